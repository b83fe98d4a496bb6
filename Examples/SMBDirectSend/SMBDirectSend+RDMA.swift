#if RDMA
import Glibc
import IterExtract
import RDMASGE
import IBVerbs
import SMBDirect
import Verbs
import TestKit

extension SMBDirectSend {
    /// How a run against a real server went.
    public struct RemoteReport: Sendable, CustomStringConvertible {
        /// The target written (or read).
        public var target: SMBDirectSendTarget
        /// The port and device the connection manager used.
        public var port: UInt16
        public var device: String
        /// The bytes written and how long the writes took (connection and session setup excluded).
        public var bytes: Int
        public var elapsed: Duration
        /// How long connecting, negotiating and setting up the session and tree took.
        public var setup: Duration
        /// The dialect the server chose and the session flags it gave (1: guest, 2: null).
        public var dialect: UInt16
        public var sessionFlags: UInt16
        /// How the session signed: `signed (AES-CMAC)` or `unsigned`.
        public var signing: String
        /// The limits SMB Direct negotiated with the server.
        public var limits: SMBDirectLimits?
        /// The client's transport counters: messages, SGEs, credits.
        public var transport: SMBDirectStatistics
        /// Writes inline and through the RDMA channel, and the bytes the server pulled by RDMA READ.
        public var inlineWrites: Int
        public var inlineBytes: Int
        public var rdmaWrites: Int
        public var rdmaBytes: Int
        public var bufferDescriptors: Int
        /// The most WRITEs allowed in flight, the most that were, and the times a WRITE waited for SMB2 credits.
        public var depth: Int
        public var maxRequestsInFlight: Int
        public var smb2CreditStalls: Int
        /// Interim `STATUS_PENDING` responses, and responses that overtook an earlier request's.
        public var interimResponses: Int
        public var outOfOrderResponses: Int
        /// The server-side path compared byte for byte with the file, if one was given.
        public var verifiedCopy: String?
        /// What the client held once the last response arrived.
        public var leftovers: Leftovers
        /// For a read: the client's counters (reads inline and through the RDMA
        /// channel), and what protects the registered destination across `fork()`.
        public var readStatistics: SMB2Client<IBVerbsProtectionDomain>.Statistics?
        public var forkProtection: String?

        /// Bytes per second.
        public var rate: Double { TransferProgressBar.rate(bytes: bytes, elapsed: elapsed) }

        public var description: String {
            let t = transport
            let sgesPerMessage = t.messagesSent == 0 ? 0 : (t.sgesSent * 100 + t.messagesSent / 2) / t.messagesSent
            let limitText = limits.map {
                "send \($0.maxSendSize), receive \($0.maxReceiveSize), fragmented \($0.maxFragmentedSendSize), read/write \($0.maxReadWriteSize)"
            } ?? "-"
            return """
            \(bytes) bytes \(readStatistics == nil ? "to" : "from") \(target) in \(elapsed), \(TransferProgressBar.mebibytes(Int(rate))) MiB/s (setup \(setup)); \
            \(verifiedCopy.map { "copy verified (\($0))" } ?? "copy not checked")
            server:       \(device) port \(port), dialect 0x\(String(dialect, radix: 16)), session flags \(sessionFlags), \(signing)
            limits:       \(limitText)
            messages:     \(t.messagesSent) sent (\(t.emptyMessagesSent) without payload), \(t.messagesReceived) received
            SGEs/message: \(sgesPerMessage / 100).\(sgesPerMessage % 100 < 10 ? "0" : "")\(sgesPerMessage % 100) mean, \(t.maxSGEsPerMessage) max (SGE 0 the header; \(t.payloadSGEsSent) payload SGEs from the iterator)
            \(readStatistics.map { SMBDirectSend.Report.readsLine($0) + "\nfork:         " + (forkProtection ?? "-") }
                ?? "writes:       \(inlineWrites) inline (\(inlineBytes) bytes), \(rdmaWrites) through the RDMA channel (\(bufferDescriptors) buffer descriptors)")
            in flight:    \(maxRequestsInFlight) requests at most (depth \(depth)), \(smb2CreditStalls) stalls for SMB2 credits, \(interimResponses) interim responses, \(outOfOrderResponses) out of order
            \(readStatistics == nil ? "RDMA READ:    \(rdmaBytes) bytes pulled by the server" : "RDMA WRITE:   \(t.rdmaWriteBytes) bytes pushed by the server")
            credits:      \(t.creditsReceived) received, \(t.creditsGranted) granted, \(t.creditStalls) stalls
            \(leftovers.line)
            """
        }
    }

    /// Connects to a real SMB Direct server through the connection manager
    /// (librdmacm): resolves `target.host` (an IPv4 or IPv6 address) to an RDMA device,
    /// connects to `port` with ``RDMAConnection``, negotiates SMB Direct, then runs
    /// NEGOTIATE, SESSION_SETUP (`login`'s) and TREE_CONNECT with a client of
    /// `inlineThreshold`, `depth` and `maxDescriptors`; calls `body` with it, then
    /// disconnects and closes the protection domain in order (a region or queue pair
    /// left behind shows as `EBUSY`). `receivedMessageTap` gets every SMB Direct
    /// message the server sends. Returns what `body` returned, the client, the
    /// device's name and how long the setup took.
    static func withSession<R>(
        target: SMBDirectSendTarget, port: UInt16, inlineThreshold: Int, depth: Int, maxDescriptors: Int,
        configuration: SMBDirectConfiguration, login: SMBDirectSendLogin,
        receivedMessageTap: ((UnsafeRawBufferPointer) -> Void)?, _ body: (SMB2Client<IBVerbsProtectionDomain>) throws(SMBDirectSendError) -> R
    ) throws(SMBDirectSendError) -> (result: R, client: SMB2Client<IBVerbsProtectionDomain>, device: String, setup: Duration) {
        let clock = ContinuousClock()
        let began = clock.now
        let device: IBVerbs
        let domain: IBVerbsProtectionDomain
        do {
            device = try IBVerbs(reaching: target.host, timeout: configuration.timeout)
            domain = try device.allocateProtectionDomain()
        } catch {
            throw .smb(.transport(.verbs(error)))
        }
        let connection: SMBDirectConnection<IBVerbsProtectionDomain>
        do {
            connection = try SMBDirectConnection(domain: domain, role: .initiator, configuration: configuration)
        } catch {
            throw .smb(.transport(error))
        }
        connection.receivedMessageTap = receivedMessageTap
        // The server pulls the data of RDMA-channel writes with RDMA READs: offer it
        // as many in flight as the device allows.
        let reads = device.maxReadsInFlight
        var link: RDMAConnection?
        var domainClosed = false
        defer {
            // After a failure, best effort: the failure is what the caller hears of.
            if !domainClosed {
                connection.disconnect()
                try? link?.disconnect()
                link = nil
                try? domain.close()
            }
        }
        do throws(SMBDirectError) {
            do {
                link = try RDMAConnection.connect(
                    to: target.host, port: port, queuePair: connection.queuePair,
                    parameters: connectionParameters(readsInFlight: reads), timeout: configuration.timeout)
            } catch {
                throw .verbs(error)
            }
            // A server that goes away ends the run at once, not after the timeout.
            if let link { connection.watch(link) }
            try connection.start()
            try connection.waitUntilConnected()
        } catch {
            throw .smb(.transport(error))
        }
        let client = SMB2Client(connection: connection, inlineThreshold: inlineThreshold, maxDescriptors: maxDescriptors,
                                depth: depth, requiresSigning: login.requiresSigning)
        do throws(SMB2Error) {
            try login.start(client, share: target.uncShare)
        } catch {
            throw .smb(error)
        }
        let setup = clock.now - began
        let result = try body(client)
        do throws(SMBDirectError) {
            try connection.close()
        } catch {
            throw .smb(.transport(error))
        }
        // In order, so that a region or queue pair left behind shows as EBUSY here.
        do throws(VerbsError) {
            try link?.disconnect()
            link = nil
            domainClosed = true
            try domain.close()
        } catch {
            throw .smb(.transport(.verbs(error)))
        }
        return (result, client, device.name, setup)
    }

    /// Writes `file` to `target` on a real SMB Direct server (see
    /// `withSession(target:port:inlineThreshold:depth:maxDescriptors:configuration:login:receivedMessageTap:_:)`):
    /// CREATE, the WRITEs (inline up to `inlineThreshold` bytes, through the RDMA
    /// channel above, up to `depth` in flight, each with at most `maxDescriptors`
    /// buffer descriptors) and CLOSE. The file is read into folios of at most order
    /// `maxFolioOrder`.
    ///
    /// When `verifyPath` names the server's copy on a file system this machine sees
    /// (the server runs on it, or shares it), the copy is compared byte for byte.
    /// `progress` is called after every WRITE with the bytes written, the total and
    /// the time so far; `receivedMessageTap` with every SMB Direct message the server
    /// sends (see ``SMBDirectConnection/receivedMessageTap``).
    public static func runOverRDMA(
        file: String, target: SMBDirectSendTarget, port: UInt16 = 445, inlineThreshold: Int = 4096,
        depth: Int = SMB2Client<IBVerbsProtectionDomain>.defaultDepth,
        maxDescriptors: Int = SMB2Client<IBVerbsProtectionDomain>.defaultMaxDescriptors,
        maxFolioOrder: Int = Folio.maxOrder, configuration: SMBDirectConfiguration = SMBDirectConfiguration(),
        verifyPath: String? = nil, login: SMBDirectSendLogin = .anonymous,
        receivedMessageTap: ((UnsafeRawBufferPointer) -> Void)? = nil,
        progress: (Int, Int, Duration) -> Void = { _, _, _ in }
    ) throws(SMBDirectSendError) -> RemoteReport {
        let source = try PageCacheFile(path: file, maxFolioOrder: maxFolioOrder)
        let clock = ContinuousClock()
        let session = try withSession(
            target: target, port: port, inlineThreshold: inlineThreshold, depth: depth, maxDescriptors: maxDescriptors,
            configuration: configuration, login: login, receivedMessageTap: receivedMessageTap
        ) { (client) throws(SMBDirectSendError) -> Duration in
            do throws(SMB2Error) {
                let handle = try client.create(target.smbPath)
                var iterator = source.makeIterator()
                let start = clock.now
                try client.write(&iterator, to: handle) { done in progress(done, source.size, clock.now - start) }
                try client.close(handle)
                return clock.now - start
            } catch {
                throw .smb(error)
            }
        }
        if let verifyPath { try verify(verifyPath, against: source) }
        return report(session.client, target: target, port: port, device: session.device, bytes: source.size,
                      elapsed: session.result, setup: session.setup, depth: depth, verifyPath: verifyPath)
    }

    /// Reads `target` from a real SMB Direct server into the local file `file` (see
    /// `withSession(target:port:inlineThreshold:depth:maxDescriptors:configuration:login:receivedMessageTap:_:)`):
    /// OPEN, the READs into a reused window of anonymous user memory (inline up to
    /// `inlineThreshold` bytes, through the RDMA channel above, the pages pinned while
    /// the server writes them, up to `depth` in flight), CLOSE. Fork protection is
    /// enabled first, before the device is opened, as for any process that exposes
    /// its memory to a peer's RDMA WRITE. `verifyPath` (the server's file, when this
    /// machine sees it) is compared with `file` byte for byte.
    public static func runReadOverRDMA(
        file: String, target: SMBDirectSendTarget, port: UInt16 = 445, inlineThreshold: Int = 4096,
        depth: Int = SMB2Client<IBVerbsProtectionDomain>.defaultDepth,
        maxDescriptors: Int = SMB2Client<IBVerbsProtectionDomain>.defaultMaxDescriptors,
        configuration: SMBDirectConfiguration = SMBDirectConfiguration(), verifyPath: String? = nil,
        login: SMBDirectSendLogin = .anonymous, receivedMessageTap: ((UnsafeRawBufferPointer) -> Void)? = nil,
        progress: (Int, Int, Duration) -> Void = { _, _, _ in }
    ) throws(SMBDirectSendError) -> RemoteReport {
        let fork: IBVerbs.ForkProtection
        do throws(VerbsError) { fork = try IBVerbs.enableForkProtection() } catch { throw .smb(.transport(.verbs(error))) }
        let session = try withSession(
            target: target, port: port, inlineThreshold: inlineThreshold, depth: depth, maxDescriptors: maxDescriptors,
            configuration: configuration, login: login, receivedMessageTap: receivedMessageTap
        ) { (client) throws(SMBDirectSendError) in
            try readFile(client, target, into: file, progress: progress)
        }
        if let verifyPath { try verify(file, against: PageCacheFile(path: verifyPath)) }
        var report = report(session.client, target: target, port: port, device: session.device, bytes: session.result.bytes,
                            elapsed: session.result.elapsed, setup: session.setup, depth: depth, verifyPath: verifyPath)
        report.readStatistics = session.client.statistics
        report.forkProtection = "\(fork)"
        return report
    }

    /// The report of a run of `client`.
    private static func report(_ client: SMB2Client<IBVerbsProtectionDomain>, target: SMBDirectSendTarget, port: UInt16,
                               device: String, bytes: Int, elapsed: Duration, setup: Duration, depth: Int,
                               verifyPath: String?) -> RemoteReport {
        let statistics = client.statistics
        return RemoteReport(
            target: target, port: port, device: device, bytes: bytes, elapsed: elapsed, setup: setup,
            dialect: client.dialect, sessionFlags: client.sessionFlags, signing: SMBDirectSendLogin.signingText(of: client),
            limits: client.connection.limits,
            transport: client.connection.statistics, inlineWrites: statistics.inlineWrites, inlineBytes: statistics.inlineBytes,
            rdmaWrites: statistics.rdmaWrites, rdmaBytes: statistics.rdmaBytes,
            bufferDescriptors: statistics.bufferDescriptors, depth: depth,
            maxRequestsInFlight: statistics.maxRequestsInFlight, smb2CreditStalls: statistics.creditStalls,
            interimResponses: statistics.interimResponses, outOfOrderResponses: statistics.outOfOrderResponses,
            verifiedCopy: verifyPath, leftovers: Leftovers(of: client))
    }
}
#endif
