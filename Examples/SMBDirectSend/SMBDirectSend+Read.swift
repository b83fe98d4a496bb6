#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import RDMASGE
import SMBDirect
import SoftVerbs
import TestKit

extension SMBDirectSend.Report {
    /// The report's line about reads: inline and through the RDMA channel.
    static func readsLine<Domain>(_ client: SMB2Client<Domain>.Statistics) -> String {
        "reads:        \(client.inlineReads) inline (\(client.inlineReadBytes) bytes), \(client.rdmaReads) through the RDMA channel "
            + "(\(client.rdmaReadBytes) bytes, \(client.readBufferDescriptors) buffer descriptors)"
    }
}

extension SMBDirectSend {
    /// Reads the file `target.smbPath` with `client` (its session and tree set up) into
    /// the local file `path`, created or truncated: window by window through one
    /// buffer of user memory (anonymous, page-aligned: a UBUF destination whose pages
    /// the RDMA-channel reads pin) of ``SMB2Client/depth`` × ``SMB2Client/maxReadSize``
    /// bytes, reused, each window written to `path` once read. Returns the bytes read
    /// and how long the reads took; `progress` gets the bytes so far, the file's size
    /// and the time so far.
    static func readFile<Domain>(_ client: SMB2Client<Domain>, _ target: SMBDirectSendTarget, into path: String,
                             progress: (Int, Int, Duration) -> Void) throws(SMBDirectSendError) -> (bytes: Int, elapsed: Duration) {
        let output = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard output >= 0 else { throw .unwritableFile(path, errno: errno) }
        defer { close(output) }
        let window = UnsafeMutableRawBufferPointer.allocate(byteCount: client.depth * client.maxReadSize, alignment: pageSize)
        defer { window.deallocate() }
        let clock = ContinuousClock()
        var total = 0
        var start = clock.now
        var unwritten: Int32?
        do throws(SMB2Error) {
            let (handle, size) = try client.open(target.smbPath)
            start = clock.now
            while true {
                let asked = min(window.count, Int(clamping: size) - total)
                guard asked > 0 else { break }
                var destination: IOIterator
                do {
                    destination = try IOIterator(ubufAt: UInt(bitPattern: window.baseAddress), count: asked, direction: .destination)
                } catch {
                    preconditionFailure("a window of allocated memory is a valid UBUF: \(error)")
                }
                let done = total
                let n = try client.read(from: handle, at: UInt64(total), into: &destination) { progress(done + $0, Int(size), clock.now - start) }
                guard pwrite(output, window.baseAddress!, n, off_t(total)) == n else {
                    unwritten = errno
                    break
                }
                total += n
                if n < asked { break }
            }
            try client.close(handle)
        } catch {
            throw .smb(error)
        }
        if let unwritten { throw .unwritableFile(path, errno: unwritten) }
        return (total, clock.now - start)
    }

    /// Reads `target.path` from the in-process server over SoftVerbs, which serves the
    /// files of `serverRoot`, into the local file `file`, then verifies it against the
    /// server's file byte for byte; up to `depth` READs in flight, the server answering
    /// them as `scheduling` says. The session is `login`'s, whom the server then knows.
    public static func runInProcessRead(
        file: String, target: SMBDirectSendTarget, serverRoot: String, inlineThreshold: Int = 4096,
        depth: Int = SMB2Client<SoftProtectionDomain>.defaultDepth,
        maxDescriptors: Int = SMB2Client<SoftProtectionDomain>.defaultMaxDescriptors,
        scheduling: SMB2WriteScheduling = .immediate, configuration: SMBDirectConfiguration = SMBDirectConfiguration(),
        login: SMBDirectSendLogin = .anonymous, progress: (Int, Int, Duration) -> Void = { _, _, _ in }
    ) throws(SMBDirectSendError) -> Report {
        let serverCopy = serverRoot + "/" + target.path
        let loopback = try loopback(serving: serverRoot, target: target, inlineThreshold: inlineThreshold, depth: depth,
                                    maxDescriptors: maxDescriptors, scheduling: scheduling,
                                    configuration: configuration, login: login)
        let client = loopback.client
        let result: (bytes: Int, elapsed: Duration)
        do throws(SMBDirectSendError) {
            do throws(SMB2Error) {
                try login.start(client, share: target.uncShare)
            } catch {
                throw SMBDirectSendError.smb(error)
            }
            result = try readFile(client, target, into: file, progress: progress)
            do { try loopback.close() } catch { throw SMBDirectSendError.smb(.transport(error)) }
        } catch {
            if case .smb = error, let failure = loopback.server.failure { throw .smb(failure) }
            throw error
        }
        try verify(file, against: PageCacheFile(path: serverCopy))
        var report = Report(target: target, bytes: result.bytes, elapsed: result.elapsed, transport: client.connection.statistics,
                            client: client.statistics, depth: depth, serverRDMAReadBytes: 0, copyPath: file,
                            leftovers: Leftovers(of: client))
        report.isRead = true
        report.signing = SMBDirectSendLogin.signingText(of: client)
        report.serverRDMAWriteBytes = loopback.server.statistics.rdmaWriteBytes
        return report
    }
}
