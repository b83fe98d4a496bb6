#if canImport(Glibc)
import Glibc
#endif
import RDMASGE

/// The server side of rdma-copy, on any verbs backend: takes one request at a time
/// from `listener`, checks it, and exposes exactly one buffer for the session, with
/// a region of its own that covers exactly the buffer and allows only what the
/// operation needs (remote write for a push, remote read for a fetch). The region is
/// deregistered as soon as the client's transfer is over, so its rkey stops working
/// before the session ends.
public final class CopyServer<Listener: VerbsListener, Domain: ProtectionDomain>: Sendable
where Listener.Request.Connection.QueuePairType == Domain.QueuePairType {
    /// What a server does.
    public struct Configuration: Sendable {
        /// The longest push accepted; longer ones are rejected with ``CopyRejection/Reason/tooLarge``.
        public var maxSize: Int
        /// The file fetches read, if any (else fetches are rejected with
        /// ``CopyRejection/Reason/nothingToFetch``).
        public var file: CopyBuffer?
        /// Where a verified push is written, if anywhere.
        public var outputPath: String?
        /// The longest wait for the client at any step.
        public var timeout: Duration
        /// Called with a push's bytes after they arrived and before their SHA-256 is
        /// computed: a place to look at them (tests damage a byte here).
        public var willVerify: (@Sendable (UnsafeMutableRawBufferPointer) -> Void)?

        /// A server taking pushes of up to `maxSize` bytes (1 GiB by default), exposing
        /// `file` to fetches and writing verified pushes to `outputPath`.
        public init(maxSize: Int = 1 << 30, file: CopyBuffer? = nil, outputPath: String? = nil, timeout: Duration = .seconds(30),
                    willVerify: (@Sendable (UnsafeMutableRawBufferPointer) -> Void)? = nil) {
            precondition(maxSize > 0, "a server takes at least one byte")
            self.maxSize = maxSize
            self.file = file
            self.outputPath = outputPath
            self.timeout = timeout
            self.willVerify = willVerify
        }
    }

    /// How one session ended.
    public struct Session: Sendable, CustomStringConvertible {
        /// What became of the request.
        public enum Outcome: Hashable, Sendable {
            /// Rejected, for this reason.
            case rejected(CopyRejection)
            /// A push of this many bytes arrived; whether its SHA-256 matched the client's.
            case pushed(bytes: Int, status: CopyStatus)
            /// The file was read by the client.
            case fetched(bytes: Int)
        }

        /// The client's address.
        public var peer: String
        /// What became of the request.
        public var outcome: Outcome
        /// Whether the client said this was its last session.
        public var isLastSession: Bool

        /// Whether the bytes moved and were verified: a fetch, or a push whose SHA-256 matched.
        public var succeeded: Bool {
            switch outcome {
            case .pushed(_, .verified), .fetched: true
            case .pushed, .rejected: false
            }
        }

        /// A line for the server's log.
        public var description: String {
            switch outcome {
            case .rejected(let rejection): "rejected a request from \(peer): \(rejection)"
            case .pushed(let bytes, .verified): "received \(bytes) bytes from \(peer), sha256 OK"
            case .pushed(let bytes, let status): "received \(bytes) bytes from \(peer): \(status)"
            case .fetched(let bytes): "\(peer) fetched \(bytes) bytes, sha256 sent"
            }
        }
    }

    /// The listener requests come from.
    public let listener: Listener
    /// The domain sessions' queue pairs and regions are made in.
    public let domain: Domain
    /// What the server does.
    public let configuration: Configuration
    private let fileDigest: [UInt8]?
    /// How many of a fetching client's RDMA READs may be outstanding (the device and the
    /// client's own depth cap it).
    private static var readDepth: Int { 16 }

    /// A server for `listener`'s requests, in `domain`.
    public init(listener: Listener, domain: Domain, configuration: Configuration = Configuration()) {
        self.listener = listener
        self.domain = domain
        self.configuration = configuration
        fileDigest = configuration.file.map { sha256($0.bytes) }
    }

    /// Takes the next request, waiting at most `timeout` (forever when `nil`), and
    /// serves it; `nil` when none came in time.
    /// - Throws: ``RDMACopyError`` for a session that failed after the request was
    ///   accepted (the client went away, a transfer failed, a protocol violation);
    ///   everything the session held is released then.
    public func serveOne(timeout: Duration? = nil) throws(RDMACopyError) -> Session? {
        let request: Listener.Request
        do throws(VerbsError) {
            guard let taken = try listener.accept(timeout: timeout) else { return nil }
            request = taken
        } catch {
            throw .verbs(error)
        }
        let copy: CopyRequest
        do throws(CopyRejection) {
            copy = try CopyRequest(parsing: request.peerParameters.privateData, maxSize: UInt64(configuration.maxSize))
            if copy.operation == .fetch, configuration.file == nil { throw CopyRejection(.nothingToFetch) }
        } catch {
            return try reject(request, error, isLastSession: false)
        }
        let buffer: CopyBuffer
        let region: Domain.Region
        let endpoint: CopyEndpoint<Domain>
        do throws(RDMACopyError) {
            if copy.operation == .fetch, let file = configuration.file { buffer = file } else { buffer = try CopyBuffer(count: Int(copy.length)) }
            endpoint = try CopyEndpoint(domain: domain, sendDepth: 2, maxSGEs: 1)
            do throws(VerbsError) {
                region = try domain.registerMemory(address: UInt(buffer.address), length: buffer.bytes.count,
                                                   access: copy.operation == .push ? [.localWrite, .remoteWrite] : .remoteRead)
            } catch {
                endpoint.close()
                throw .verbs(error)
            }
        } catch {
            return try reject(request, CopyRejection(.noResources), isLastSession: copy.isLastSession)
        }
        defer {
            endpoint.close()
            try? region.deregister()
        }
        let offer = CopyOffer(operation: copy.operation, address: buffer.address, rkey: region.rkey, length: UInt64(buffer.bytes.count))
        let connection: Listener.Request.Connection
        do throws(VerbsError) {
            connection = try request.accept(endpoint.queuePair, parameters: ConnectionParameters(
                privateData: offer.privateData, responderResources: Self.readDepth, initiatorDepth: Self.readDepth),
                                            timeout: configuration.timeout)
        } catch {
            throw .verbs(error)
        }
        defer { try? connection.disconnect() }
        let peer = request.peerHost
        switch copy.operation {
        case .push:
            let status = try receivePush(into: buffer, region: region, endpoint: endpoint, connection: connection)
            return Session(peer: peer, outcome: .pushed(bytes: buffer.bytes.count, status: status), isLastSession: copy.isLastSession)
        case .fetch:
            try serveFetch(of: buffer, region: region, endpoint: endpoint, connection: connection)
            return Session(peer: peer, outcome: .fetched(bytes: buffer.bytes.count), isLastSession: copy.isLastSession)
        }
    }

    /// Waits for the push's WRITE WITH IMMEDIATE and the client's digest, deregisters
    /// the buffer, checks it and sends the verdict; writes a verified push to the
    /// output path.
    private func receivePush(into buffer: CopyBuffer, region: Domain.Region, endpoint: CopyEndpoint<Domain>,
                             connection: Listener.Request.Connection) throws(RDMACopyError) -> CopyStatus {
        try endpoint.postReceive(slot: 0)
        try endpoint.postReceive(slot: 1)
        let (written, _) = try receive(on: endpoint, watching: connection, within: patience(configuration.timeout, forBytes: buffer.bytes.count),
                                       step: "waiting for the RDMA WRITEs")
        guard written.opcode == .receiveRDMAWithImmediate, let immediate = written.immediateData else {
            throw .protocolViolation("\(written.opcode) where the WRITE WITH IMMEDIATE was due")
        }
        let (_, bytes) = try receive(on: endpoint, watching: connection, within: configuration.timeout,
                                     step: "waiting for the client's SHA-256")
        let claimed = try CopyMessage(parsing: bytes, expecting: .digest)
        try? region.deregister()
        configuration.willVerify?(buffer.bytes)
        let digest = sha256(buffer.bytes)
        let status: CopyStatus = if immediate != UInt32(truncatingIfNeeded: buffer.bytes.count) || claimed.length != buffer.bytes.count {
            .lengthMismatch
        } else if claimed.sha256 != digest {
            .digestMismatch
        } else {
            .verified
        }
        try endpoint.send(CopyMessage(kind: .verdict, status: status, length: UInt64(buffer.bytes.count), sha256: digest),
                          timeout: configuration.timeout)
        if status == .verified, let path = configuration.outputPath { try buffer.write(to: path) }
        return status
    }

    /// Waits for the client's `done`, deregisters the file's region and sends the file's SHA-256.
    private func serveFetch(of buffer: CopyBuffer, region: Domain.Region, endpoint: CopyEndpoint<Domain>,
                            connection: Listener.Request.Connection) throws(RDMACopyError) {
        try endpoint.postReceive(slot: 0)
        let (_, bytes) = try receive(on: endpoint, watching: connection, within: patience(configuration.timeout, forBytes: buffer.bytes.count),
                                     step: "waiting for the client's RDMA READs")
        _ = try CopyMessage(parsing: bytes, expecting: .done)
        try? region.deregister()
        try endpoint.send(CopyMessage(kind: .digest, length: UInt64(buffer.bytes.count), sha256: fileDigest!), timeout: configuration.timeout)
    }

    /// Waits at most `limit` for the next receive, taking `connection`'s events meanwhile:
    /// taking a disconnect moves the queue pair to the error state, which flushes the
    /// receive, so a client that went away ends the wait at once.
    private func receive(on endpoint: CopyEndpoint<Domain>, watching connection: Listener.Request.Connection, within limit: Duration,
                         step: String) throws(RDMACopyError) -> (WorkCompletion, [UInt8]) {
        let deadline = ContinuousClock.now.advanced(by: limit)
        while true {
            do throws(RDMACopyError) {
                return try endpoint.receive(timeout: min(.seconds(1), deadline - .now), step: step)
            } catch .timedOut where ContinuousClock.now < deadline {
                _ = try? connection.takeEvent()
            }
        }
    }

    private func reject(_ request: Listener.Request, _ rejection: CopyRejection, isLastSession: Bool) throws(RDMACopyError) -> Session {
        do throws(VerbsError) {
            try request.reject(privateData: rejection.privateData)
        } catch {
            throw .verbs(error)
        }
        return Session(peer: request.peerHost, outcome: .rejected(rejection), isLastSession: isLastSession)
    }
}

extension CopyServer {
    /// Serves requests one after another and logs each session with `log` (a failed
    /// one as its error); stops after `sessions` sessions (never when `nil`), after the
    /// session a client marked as its last when `untilLastSession`, or at `deadline`.
    /// - Returns: How many sessions succeeded (``Session/succeeded``) and how many failed.
    public func serve(sessions: Int? = nil, untilLastSession: Bool = false, deadline: ContinuousClock.Instant? = nil,
                      log: (Result<Session, RDMACopyError>) -> Void) -> (succeeded: Int, failed: Int) {
        var counts = (succeeded: 0, failed: 0)
        while sessions.map({ counts.succeeded + counts.failed < $0 }) ?? true {
            let left = deadline.map { $0 - ContinuousClock.now }
            if let left, left <= .zero { break }
            do throws(RDMACopyError) {
                guard let session = try serveOne(timeout: left) else { break }
                log(.success(session))
                if session.succeeded { counts.succeeded += 1 } else { counts.failed += 1 }
                if untilLastSession, session.isLastSession { break }
            } catch {
                log(.failure(error))
                counts.failed += 1
            }
        }
        return counts
    }
}
