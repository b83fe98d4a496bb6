#if canImport(Glibc)
import Glibc
#endif
import Crypto
import IterExtract
import RDMASGE

/// The client side of rdma-copy, on any verbs backend: connects to a ``CopyServer``,
/// learns the server's buffer from the accept, and pushes a buffer into it by RDMA
/// WRITE or fetches it by RDMA READ, from or into an IOVEC iterator extracted through
/// `cache` by work-request plans.
///
/// One protection domain and one cache serve every session; the cache must grant
/// local write (a fetch's destination needs it). Each session forgets the client's
/// memory in the cache when it ends, so nothing stays registered, referenced or
/// pinned for memory the caller may free.
public final class CopyClient<Connection: VerbsConnection, Domain: ProtectionDomain>
where Connection.QueuePairType == Domain.QueuePairType {
    /// The cache SGEs are extracted through.
    public let cache: MRCache<Domain>
    /// The ledger a user-backed iterator's pins are recorded in.
    public let ledger: PinLedger
    /// How sessions move bytes and wait.
    public let tuning: CopyTuning
    /// The most bytes a fetch accepts from a server.
    public let maxSize: Int

    /// A client extracting through `cache` (which must grant local write).
    public init(cache: MRCache<Domain>, ledger: PinLedger = .shared, tuning: CopyTuning = CopyTuning(), maxSize: Int = 1 << 30) {
        precondition(cache.access.contains(.localWrite), "a fetch lands in memory: the cache must grant local write")
        precondition(maxSize > 0, "a client takes at least one byte")
        self.cache = cache
        self.ledger = ledger
        self.tuning = tuning
        self.maxSize = maxSize
    }

    /// Pushes `buffer` to the server at `host` and `port` and returns once the server
    /// verified its SHA-256. `progress` gets the bytes written so far and the total.
    /// - Throws: ``RDMACopyError``: ``RDMACopyError/rejected(_:)`` with the server's
    ///   reason, ``RDMACopyError/refused(host:port:)`` when nothing listens (after
    ///   ``CopyTuning/connectRetry``), ``RDMACopyError/digestMismatch(expected:received:)``
    ///   when the server's SHA-256 differs, and what a failed step throws.
    public func push(_ buffer: CopyBuffer, to host: String, port: UInt16, isLastSession: Bool = false,
                     progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(RDMACopyError) -> CopyReport {
        let start = ContinuousClock.now
        let digest = sha256(buffer.bytes)
        let request = CopyRequest(operation: .push, length: UInt64(buffer.bytes.count), isLastSession: isLastSession)
        return try session(request, host: host, port: port, memory: buffer) { (endpoint, offer) throws(RDMACopyError) in
            try endpoint.postReceive(slot: 0)
            let transferStart = ContinuousClock.now
            try buffer.withIOVecIterator(direction: .source, segmentSize: tuning.segmentSize) { (iterator) throws(RDMACopyError) in
                try window(endpoint).run(&iterator, step: "RDMA WRITE", operation: { offset, isLast in
                    isLast ? .rdmaWriteWithImmediate(remoteAddress: offer.address + offset, rkey: offer.rkey,
                                                     immediateData: UInt32(truncatingIfNeeded: offer.length))
                        : .rdmaWrite(remoteAddress: offer.address + offset, rkey: offer.rkey)
                }, progress: { progress($0, buffer.bytes.count) })
            }
            let transferTime = ContinuousClock.now - transferStart
            try endpoint.send(CopyMessage(kind: .digest, length: offer.length, sha256: digest), timeout: tuning.timeout)
            // The server hashes the bytes first.
            let (_, bytes) = try endpoint.receive(timeout: patience(tuning.timeout, forBytes: buffer.bytes.count),
                                                  step: "waiting for the server's verdict")
            let verdict = try CopyMessage(parsing: bytes, expecting: .verdict)
            switch verdict.status {
            case .verified where verdict.sha256 == digest: break
            case .verified, .digestMismatch: throw .digestMismatch(expected: hex(digest), received: hex(verdict.sha256))
            case .lengthMismatch: throw .lengthMismatch
            }
            return CopyReport(operation: .push, bytes: buffer.bytes.count, transferTime: transferTime,
                              sessionTime: ContinuousClock.now - start, sha256: hex(digest))
        }
    }

    /// Fetches the file the server at `host` and `port` exposes and returns it once
    /// its SHA-256 matches the server's. `progress` gets the bytes read so far and the total.
    /// - Throws: As ``push(_:to:port:isLastSession:progress:)``.
    public func fetch(from host: String, port: UInt16, isLastSession: Bool = false,
                      progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(RDMACopyError) -> (CopyBuffer, CopyReport) {
        let start = ContinuousClock.now
        let request = CopyRequest(operation: .fetch, length: 0, isLastSession: isLastSession)
        var fetched: CopyBuffer?
        let report = try session(request, host: host, port: port, memory: nil) { (endpoint, offer) throws(RDMACopyError) in
            let buffer = try CopyBuffer(count: Int(offer.length))
            fetched = buffer
            defer { cache.invalidate(MemoryRange(address: UInt(buffer.address), length: buffer.bytes.count)) }
            try endpoint.postReceive(slot: 0)
            let transferStart = ContinuousClock.now
            try buffer.withIOVecIterator(direction: .destination, segmentSize: tuning.segmentSize) { (iterator) throws(RDMACopyError) in
                try window(endpoint).run(&iterator, step: "RDMA READ", operation: { offset, _ in
                    .rdmaRead(remoteAddress: offer.address + offset, rkey: offer.rkey)
                }, progress: { progress($0, buffer.bytes.count) })
            }
            let transferTime = ContinuousClock.now - transferStart
            try endpoint.send(CopyMessage(kind: .done, length: offer.length, sha256: Array(repeating: 0, count: 32)),
                              timeout: tuning.timeout)
            let (_, bytes) = try endpoint.receive(timeout: tuning.timeout, step: "waiting for the server's SHA-256")
            let expected = try CopyMessage(parsing: bytes, expecting: .digest)
            let digest = sha256(buffer.bytes)
            guard expected.length == offer.length, expected.sha256 == digest else {
                throw .digestMismatch(expected: hex(expected.sha256), received: hex(digest))
            }
            return CopyReport(operation: .fetch, bytes: buffer.bytes.count, transferTime: transferTime,
                              sessionTime: ContinuousClock.now - start, sha256: hex(digest))
        }
        return (fetched!, report)
    }

    /// Connects for `request`, reads the offer, runs `body`, and disconnects and frees
    /// the session's verbs objects, whatever happened; forgets `memory` in the cache.
    private func session(
        _ request: CopyRequest, host: String, port: UInt16, memory: CopyBuffer?,
        _ body: (CopyEndpoint<Domain>, CopyOffer) throws(RDMACopyError) -> CopyReport
    ) throws(RDMACopyError) -> CopyReport {
        let endpoint = try CopyEndpoint(domain: cache.domain, sendDepth: tuning.sendDepth, maxSGEs: tuning.maxSGEs)
        defer {
            endpoint.close()
            if let memory { cache.invalidate(MemoryRange(address: UInt(memory.address), length: memory.bytes.count)) }
        }
        let connection = try connect(endpoint, request: request, host: host, port: port)
        defer { try? connection.disconnect() }
        let offer = try CopyOffer(parsing: connection.peerParameters.privateData, for: request, maxSize: UInt64(maxSize))
        return try body(endpoint, offer)
    }

    /// Connects `endpoint`'s queue pair with `request`, retrying a refusal without an
    /// rdma-copy reason for ``CopyTuning/connectRetry``.
    private func connect(_ endpoint: CopyEndpoint<Domain>, request: CopyRequest, host: String, port: UInt16) throws(RDMACopyError) -> Connection {
        let parameters = ConnectionParameters(privateData: request.privateData, responderResources: tuning.readDepth,
                                              initiatorDepth: tuning.readDepth)
        let deadline = ContinuousClock.now.advanced(by: tuning.connectRetry)
        while true {
            do throws(VerbsError) {
                return try Connection.connect(to: host, port: port, queuePair: endpoint.queuePair, parameters: parameters,
                                              timeout: tuning.timeout)
            } catch {
                guard error.errno == ECONNREFUSED else { throw .verbs(error) }
                let data = if case .rejected(let data)? = error.connectionEvent { data } else { [UInt8]() }
                if let rejection = try CopyRejection(parsing: data) { throw .rejected(rejection) }
                guard ContinuousClock.now < deadline else { throw .refused(host: host, port: port) }
                usleep(1_000_000)
            }
        }
    }

    private func window(_ endpoint: CopyEndpoint<Domain>) -> PlanWindow<Domain> {
        PlanWindow(endpoint: endpoint, cache: cache, ledger: ledger, tuning: tuning)
    }
}

/// The SHA-256 of `bytes`.
func sha256(_ bytes: UnsafeMutableRawBufferPointer) -> [UInt8] {
    var hasher = SHA256()
    hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
    return Array(hasher.finalize())
}
