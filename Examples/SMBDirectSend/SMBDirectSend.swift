#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import RDMASGE
import SoftVerbs
import SMBDirect
import TestKit

/// The logic of the `smbdirect-send` example: write a file, read through the page
/// cache, to an SMB server over SMB Direct, or read a server's file into a local one,
/// and account for how it went.
public enum SMBDirectSend {
    /// How a run went.
    public struct Report: Sendable, CustomStringConvertible {
        /// The target written (or read).
        public var target: SMBDirectSendTarget
        /// The bytes written (or read) and how long the writes (reads) took (session setup excluded).
        public var bytes: Int
        public var elapsed: Duration
        /// The client's transport counters: messages, SGEs, credits.
        public var transport: SMBDirectStatistics
        /// The client's SMB2 counters: inline and RDMA-channel writes, requests in flight, credit stalls.
        public var client: SMB2Client<SoftProtectionDomain>.Statistics
        /// The most WRITEs the client kept in flight.
        public var depth: Int
        /// The bytes the server pulled by RDMA READ.
        public var serverRDMAReadBytes: Int
        /// Where the server wrote the copy (for a read: the local copy), which was verified byte for byte.
        public var copyPath: String
        /// Whether the run read the target rather than wrote it.
        public var isRead = false
        /// For a read: the bytes the server pushed by RDMA WRITE.
        public var serverRDMAWriteBytes = 0
        /// What the client held once the last response arrived.
        public var leftovers: Leftovers
        /// How the session signed, as ``SMBDirectSendLogin`` words it: `signed (AES-CMAC)` or `unsigned`.
        public var signing = "unsigned"

        /// Bytes per second.
        public var rate: Double { TransferProgressBar.rate(bytes: bytes, elapsed: elapsed) }

        public var description: String {
            let t = transport
            return """
            \(bytes) bytes \(isRead ? "from" : "to") \(target) in \(elapsed), \(TransferProgressBar.mebibytes(Int(rate))) MiB/s; copy verified (\(copyPath))
            session:      \(signing)
            messages:     \(t.messagesSent) sent (\(t.emptyMessagesSent) without payload), \(t.messagesReceived) received
            SGEs/message: \(String(format2: t.sgesPerMessage)) mean, \(t.maxSGEsPerMessage) max (SGE 0 the header; \(t.payloadSGEsSent) payload SGEs from the iterator)
            \(isRead ? Self.readsLine(client) : "writes:       \(client.inlineWrites) inline (\(client.inlineBytes) bytes), \(client.rdmaWrites) through the RDMA channel (\(client.bufferDescriptors) buffer descriptors)")
            in flight:    \(client.maxRequestsInFlight) requests at most (depth \(depth)), \(client.creditStalls) stalls for SMB2 credits, \(client.interimResponses) interim responses, \(client.outOfOrderResponses) out of order
            \(isRead ? "RDMA WRITE:   \(serverRDMAWriteBytes) bytes pushed by the server" : "RDMA READ:    \(serverRDMAReadBytes) bytes pulled by the server")
            credits:      \(t.creditsReceived) received, \(t.creditsGranted) granted, \(t.creditStalls) stalls
            \(leftovers.line)
            """
        }
    }

    /// The connection parameters of a connection to an SMB Direct server: `readsInFlight`
    /// RDMA READs each way, and no receiver-not-ready retries (`rnr_retry_count` 0, as
    /// the kernel's client and server use): SMB Direct's credits guarantee a posted
    /// receive for every send, so an RNR NAK is a credit bug to surface, not to retry.
    public static func connectionParameters(readsInFlight: Int) -> ConnectionParameters {
        ConnectionParameters(responderResources: readsInFlight, initiatorDepth: readsInFlight, receiverNotReadyRetryCount: 0)
    }

    /// Writes `file` to `target` through the in-process server over SoftVerbs, which
    /// writes into `serverRoot`, then verifies the copy byte for byte, with up to
    /// `depth` WRITEs in flight of at most `maxDescriptors` buffer descriptors each, the
    /// server answering them as `scheduling` says. The file is read into folios of at
    /// most order `maxFolioOrder` (0: single pages, one descriptor each). The session
    /// is `login`'s, whom the server then knows (anonymous by default).
    /// `progress` is called after every WRITE's final response with the bytes written,
    /// the total and the time so far.
    public static func runInProcess(
        file: String, target: SMBDirectSendTarget, serverRoot: String, inlineThreshold: Int = 4096,
        depth: Int = SMB2Client<SoftProtectionDomain>.defaultDepth, maxDescriptors: Int = SMB2Client<SoftProtectionDomain>.defaultMaxDescriptors,
        maxFolioOrder: Int = Folio.maxOrder, scheduling: SMB2WriteScheduling = .immediate,
        configuration: SMBDirectConfiguration = SMBDirectConfiguration(), login: SMBDirectSendLogin = .anonymous,
        progress: (Int, Int, Duration) -> Void = { _, _, _ in }
    ) throws(SMBDirectSendError) -> Report {
        let source = try PageCacheFile(path: file, maxFolioOrder: maxFolioOrder)
        let copyPath = serverRoot + "/" + target.path
        let loopback = try loopback(serving: serverRoot, target: target, inlineThreshold: inlineThreshold, depth: depth,
                                    maxDescriptors: maxDescriptors, scheduling: scheduling,
                                    configuration: configuration, login: login)
        let client = loopback.client
        let clock = ContinuousClock()
        var elapsed = Duration.zero
        do throws(SMB2Error) {
            try login.start(client, share: target.uncShare)
            let file = try client.create(target.smbPath)
            var iterator = source.makeIterator()
            let start = clock.now
            try client.write(&iterator, to: file) { done in progress(done, source.size, clock.now - start) }
            try client.close(file)
            elapsed = clock.now - start
            do { try loopback.close() } catch { throw SMB2Error.transport(error) }
        } catch {
            throw .smb(loopback.server.failure ?? error)
        }
        try verify(copyPath, against: source)
        var report = Report(target: target, bytes: source.size, elapsed: elapsed, transport: client.connection.statistics,
                            client: client.statistics, depth: depth,
                            serverRDMAReadBytes: loopback.server.statistics.rdmaReadBytes, copyPath: copyPath,
                            leftovers: Leftovers(of: client))
        report.signing = SMBDirectSendLogin.signingText(of: client)
        return report
    }

    /// The in-process server over SoftVerbs, serving `serverRoot` as `target`'s share to
    /// `login`, answering as `scheduling` says, and its client, with up to `depth`
    /// requests in flight of at most `maxDescriptors` buffer descriptors each.
    static func loopback(
        serving serverRoot: String, target: SMBDirectSendTarget, inlineThreshold: Int, depth: Int, maxDescriptors: Int,
        scheduling: SMB2WriteScheduling, configuration: SMBDirectConfiguration, login: SMBDirectSendLogin
    ) throws(SMBDirectSendError) -> SMB2Loopback<SoftVerbs> {
        let loopback: SMB2Loopback<SoftVerbs>
        do {
            loopback = try SMB2Loopback(device: SoftVerbs(), root: serverRoot, shareName: target.share,
                                        client: configuration, server: configuration, inlineThreshold: inlineThreshold,
                                        depth: depth, users: login.serverUsers, clientRequiresSigning: login.requiresSigning)
        } catch {
            throw .smb(.transport(error))
        }
        loopback.server.writeScheduling = scheduling
        loopback.client.maxDescriptors = maxDescriptors
        return loopback
    }

    /// Compares the file at `path` with `source`, byte for byte.
    static func verify(_ path: String, against source: PageCacheFile) throws(SMBDirectSendError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .unreadableFile(path, errno: errno) }
        defer { close(descriptor) }
        var expected = source.makeIterator()
        let chunk = 1 << 20
        let want = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        let have = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer {
            want.deallocate()
            have.deallocate()
        }
        var offset = 0
        while true {
            let n = expected.copy(into: want)
            var got = 0
            while got < chunk {
                let r = read(descriptor, have.baseAddress! + got, chunk - got)
                guard r >= 0 else { throw .unreadableFile(path, errno: errno) }
                if r == 0 { break }
                got += r
            }
            guard got == n else { throw .mismatch(path: path, offset: offset + min(got, n)) }
            if n == 0 { return }
            if memcmp(want.baseAddress!, have.baseAddress!, n) != 0 {
                let at = (0..<n).first { want[$0] != have[$0] }!
                throw .mismatch(path: path, offset: offset + at)
            }
            offset += n
        }
    }
}

extension String {
    /// `value` with two decimals.
    fileprivate init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        self = "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + "\(hundredths % 100)"
    }
}
