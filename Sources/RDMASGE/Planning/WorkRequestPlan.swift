#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract

/// One iterator split into a chain of work requests, built into storage the plan
/// allocates once and reuses.
///
/// Each request holds at most ``Limits/maxSGEs`` SGEs, of which the first
/// ``Limits/reservedSGEs`` are left for the caller (a protocol header in SGE 0, as SMB
/// Direct does) and the rest describe payload, and at most ``Limits/maxMessageSize``
/// payload bytes. For RDMA WRITE and READ each request carries the remote address of
/// its first byte (the base plus the bytes before it) and the rkey. Requests whose
/// SGEs add up to no more than ``Limits/inlineThreshold`` bytes are sent inline.
///
/// The plan holds what extraction retained (region references, and pins for a
/// user-backed iterator) until ``release()`` or ``complete(polling:maxEmptyPolls:)``
/// gives it back, exactly once.
public final class WorkRequestPlan {
    /// What every request of the plan does.
    public enum Operation: Hashable, Sendable {
        /// SEND: each request consumes one receive at the peer.
        case send
        /// SEND, the last request with immediate data.
        case sendWithImmediate(UInt32)
        /// RDMA WRITE into the peer's memory from `remoteAddress` on.
        case rdmaWrite(remoteAddress: UInt64, rkey: UInt32)
        /// RDMA WRITE, the last request with immediate data (which consumes a receive at the peer).
        case rdmaWriteWithImmediate(remoteAddress: UInt64, rkey: UInt32, immediateData: UInt32)
        /// RDMA READ from the peer's memory at `remoteAddress` on into the iterator's memory.
        case rdmaRead(remoteAddress: UInt64, rkey: UInt32)
    }

    /// The shape of each request.
    public struct Limits: Hashable, Sendable {
        /// The most SGEs in one request, reserved ones included (the queue pair's `max_send_sge`).
        public var maxSGEs: Int
        /// The leading SGEs of each request left for the caller.
        public var reservedSGEs: Int
        /// The most payload bytes in one request.
        public var maxMessageSize: Int
        /// Requests of at most this many bytes (all SGEs) are sent inline; 0 for never.
        public var inlineThreshold: Int

        /// Limits of `maxSGEs` SGEs per request, of which the first `reservedSGEs` are left to
        /// the caller, and `maxMessageSize` payload bytes; requests of at most
        /// `inlineThreshold` bytes are sent inline.
        public init(maxSGEs: Int, reservedSGEs: Int = 0, maxMessageSize: Int, inlineThreshold: Int = 0) {
            precondition(reservedSGEs >= 0 && maxSGEs > reservedSGEs, "a request needs room for at least one payload SGE")
            precondition(maxMessageSize > 0, "a request carries at least one byte")
            precondition(inlineThreshold >= 0, "the inline threshold is not negative")
            self.maxSGEs = maxSGEs
            self.reservedSGEs = reservedSGEs
            self.maxMessageSize = maxMessageSize
            self.inlineThreshold = inlineThreshold
        }
    }

    /// One planned request.
    public struct Request {
        /// The request's SGEs, reserved ones first.
        public var sges: UnsafeBufferPointer<SGE>
        /// The payload bytes.
        public var byteCount: Int
        /// The payload bytes of the requests before this one.
        public var offset: Int
        /// The opcode to post.
        public var opcode: SendOpcode
        /// For RDMA WRITE and READ: the peer's address of the first payload byte.
        public var remoteAddress: UInt64
        /// For RDMA WRITE and READ: the peer region's rkey.
        public var rkey: UInt32
        /// Immediate data (last request of a `…WithImmediate` operation).
        public var immediateData: UInt32

        /// The payload SGEs.
        public func payload(reserved: Int) -> UnsafeBufferPointer<SGE> { UnsafeBufferPointer(rebasing: sges[reserved...]) }
    }

    /// How many requests of a posted plan ask for a completion.
    public enum Signaling: Sendable {
        /// Every request.
        case every
        /// The last request only (errors report regardless).
        case last
    }

    /// The shape of each request.
    public let limits: Limits
    /// The most requests one plan holds.
    public let requestCapacity: Int
    private let storage: UnsafeMutableBufferPointer<SGE>
    /// The planned requests, in order.
    public private(set) var requests: [Request] = []
    /// The payload bytes of all requests.
    public private(set) var byteCount = 0
    /// How many requests the last ``post(on:firstID:signaling:)`` posted.
    public private(set) var postedCount = 0
    /// The identifier of the last posted request that asked for a completion.
    var lastSignalledID: UInt64?
    /// The requests of one post, chained in one call.
    private var chain: [SendWorkRequest] = []
    /// What the build retained, until ``release()`` takes it out.
    private var retention: SGERetention?

    /// Storage for plans of up to `requestCapacity` requests shaped by `limits`.
    public init(requestCapacity: Int, limits: Limits) {
        precondition(requestCapacity > 0, "a plan holds at least one request")
        self.limits = limits
        self.requestCapacity = requestCapacity
        storage = .allocate(capacity: requestCapacity * limits.maxSGEs)
        storage.initialize(repeating: SGE(address: 0, length: 0, lkey: 0))
        requests.reserveCapacity(requestCapacity)
        chain.reserveCapacity(requestCapacity)
    }

    deinit {
        if retention != nil { release() }
        storage.deallocate()
    }

    /// Whether the plan holds what a build retained, waiting for ``release()``.
    public var isRetaining: Bool { retention != nil }

    /// Plans up to `maxSize` bytes of `iterator` as requests for `operation`, replacing
    /// the previous plan, and advances the iterator past the bytes planned. Stops
    /// early when the plan is full, the iterator ends, or an XARRAY iterator reaches
    /// a hole. Does not allocate.
    ///
    /// The previous plan must have been released.
    ///
    /// For RDMA WRITE and READ the peer's range is checked first, before anything is
    /// extracted: the most bytes this build could plan (the least of `maxSize`, the
    /// iterator's `IOIterator.count` and ``requestCapacity`` requests of
    /// ``Limits/maxMessageSize``) from the remote address must end below 2^64.
    ///
    /// - Returns: The bytes planned.
    /// - Throws: ``RDMAError/remoteRangeOverflow(remoteAddress:length:)`` for a remote
    ///   range that would wrap; what ``IterExtract/IOIterator/extract(maxSize:into:maxSGEs:keys:ledger:)``
    ///   throws. On error the iterator is unchanged, the plan is empty and nothing is retained.
    @discardableResult
    public func build<Keys: KeyResolver>(
        from iterator: inout IOIterator, operation: Operation, keys: Keys, ledger: PinLedger = .shared, maxSize: Int = .max
    ) throws(RDMAError) -> Int {
        precondition(retention == nil, "release the previous plan before building another")
        precondition(maxSize >= 0, "maxSize is not negative")
        if operation.isRead { precondition(iterator.direction == .destination, "an RDMA READ lands in a destination iterator") }
        requests.removeAll(keepingCapacity: true)
        byteCount = 0
        postedCount = 0
        if let remoteAddress = operation.remoteAddress {
            let (capacity, overflow) = requestCapacity.multipliedReportingOverflow(by: limits.maxMessageSize)
            let most = Swift.min(maxSize, iterator.count, overflow ? .max : capacity)
            guard !remoteAddress.addingReportingOverflow(UInt64(most)).overflow else {
                throw .remoteRangeOverflow(remoteAddress: remoteAddress, length: most)
            }
        }
        let saved = iterator
        let reserved = limits.reservedSGEs
        do {
            while requests.count < requestCapacity, byteCount < maxSize, iterator.count > 0 {
                // Each request's payload SGEs are extracted straight into its slots.
                let first = requests.count * limits.maxSGEs
                let payload = UnsafeMutableBufferPointer(rebasing: storage[first + reserved..<first + limits.maxSGEs])
                let (bytes, sgeCount) = try iterator.extract(
                    maxSize: Swift.min(limits.maxMessageSize, maxSize - byteCount), into: payload, keys: keys, ledger: ledger)
                if bytes == 0 { break }
                let sges = UnsafeBufferPointer(rebasing: storage[first..<first + reserved + sgeCount])
                requests.append(Request(sges: sges, byteCount: bytes, offset: byteCount, opcode: .send,
                                        remoteAddress: 0, rkey: 0, immediateData: 0))
                byteCount += bytes
            }
        } catch {
            iterator.retention(keys: keys, ledger: ledger).release(allPayloadSGEs())
            iterator = saved
            requests.removeAll(keepingCapacity: true)
            byteCount = 0
            throw error
        }
        for index in requests.indices { shape(&requests[index], isLast: index == requests.count - 1, operation) }
        retention = iterator.retention(keys: keys, ledger: ledger)
        return byteCount
    }

    /// Plans one request of the reserved SGEs alone, with no payload (a protocol
    /// message that is all header), replacing the previous plan, which must have been
    /// released. Such a plan retains nothing: ``isRetaining`` is false and there is
    /// nothing to ``release()``.
    ///
    /// - Precondition: ``Limits/reservedSGEs`` is positive.
    public func buildReservedOnly(operation: Operation = .send) {
        precondition(retention == nil, "release the previous plan before building another")
        precondition(limits.reservedSGEs > 0, "a request without payload is its reserved SGEs")
        requests.removeAll(keepingCapacity: true)
        byteCount = 0
        postedCount = 0
        let sges = UnsafeBufferPointer(rebasing: storage[0..<limits.reservedSGEs])
        requests.append(Request(sges: sges, byteCount: 0, offset: 0, opcode: .send, remoteAddress: 0, rkey: 0, immediateData: 0))
        shape(&requests[0], isLast: true, operation)
    }

    /// Puts `sge` in reserved slot `slot` of request `request` (a header, say).
    public func setReservedSGE(_ sge: SGE, slot: Int, request: Int) {
        precondition(slot >= 0 && slot < limits.reservedSGEs, "slot \(slot) is not a reserved SGE")
        precondition(requests.indices.contains(request), "request \(request) is not in the plan")
        storage[request * limits.maxSGEs + slot] = sge
    }

    /// The work request to post for request `index`.
    public func workRequest(at index: Int, id: UInt64, signaled: Bool) -> SendWorkRequest {
        let request = requests[index]
        // The payload SGEs add up to the payload bytes; only the reserved ones are summed.
        var total = request.byteCount
        for slot in 0..<limits.reservedSGEs {
            precondition(request.sges[slot].length > 0, "reserved SGE \(slot) of request \(index) was not set")
            total += Int(request.sges[slot].length)
        }
        var flags: SendFlags = signaled ? .signaled : []
        if request.opcode != .rdmaRead, total <= limits.inlineThreshold { flags.insert(.inline) }
        return SendWorkRequest(id: id, opcode: request.opcode, sges: request.sges, flags: flags,
                               immediateData: request.immediateData, remoteAddress: request.remoteAddress, rkey: request.rkey)
    }

    /// Posts every request, in order, with identifiers `firstID`, `firstID + 1`, …
    /// (wrapping from `UInt64.max` to 0), chained in one call: one doorbell for the
    /// whole plan on a device. Does not allocate.
    ///
    /// On a refusal ``postedCount`` tells how many went out (the requests before the
    /// refused one, as libibverbs' `bad_wr` reports), and those must complete before the
    /// plan is released. With ``Signaling/last`` a refusal leaves the requests that went
    /// out with no completion to wait for: use ``Signaling/every`` when posts may be
    /// refused.
    ///
    /// The corresponding C function is `ibv_post_send` with a chain of requests.
    /// - Throws: What `QueuePair.postSend(chain:)` throws; its `failedRequest` is the
    ///   position of the refused request in the plan.
    public func post<Pair: QueuePair>(on queuePair: Pair, firstID: UInt64 = 0, signaling: Signaling = .last) throws(VerbsError) {
        precondition(postedCount == 0, "the plan was posted already")
        lastSignalledID = nil
        chain.removeAll(keepingCapacity: true)
        for index in requests.indices {
            let signaled = signaling == .every || index == requests.count - 1
            chain.append(workRequest(at: index, id: firstID &+ UInt64(index), signaled: signaled))
        }
        defer { lastSignalledID = chain[..<postedCount].last(where: { $0.flags.contains(.signaled) })?.id }
        do {
            try chain.withUnsafeBufferPointer { (chain) throws(VerbsError) in try queuePair.postSend(chain: chain) }
            postedCount = requests.count
        } catch {
            postedCount = error.failedRequest ?? 0
            throw error
        }
    }

    /// Gives back what the build retained: each payload SGE's region reference and,
    /// for a user-backed iterator, its pages' pins. Once per build; the requests must
    /// have completed.
    public func release() {
        guard let retention = retention.take() else {
            preconditionFailure("the plan holds nothing to release (released twice, or never built)")
        }
        retention.release(allPayloadSGEs())
        postedCount = 0
    }

    /// Every payload SGE of the plan, in order.
    private func allPayloadSGEs() -> some Collection<SGE> {
        let reserved = limits.reservedSGEs
        return requests.lazy.flatMap { $0.payload(reserved: reserved) }
    }

    private func shape(_ request: inout Request, isLast: Bool, _ operation: Operation) {
        switch operation {
        case .send:
            request.opcode = .send
        case .sendWithImmediate(let data):
            request.opcode = isLast ? .sendWithImmediate : .send
            request.immediateData = isLast ? data : 0
        case .rdmaWrite(let base, let rkey):
            request.opcode = .rdmaWrite
            request.remoteAddress = base + UInt64(request.offset)
            request.rkey = rkey
        case .rdmaWriteWithImmediate(let base, let rkey, let data):
            request.opcode = isLast ? .rdmaWriteWithImmediate : .rdmaWrite
            request.remoteAddress = base + UInt64(request.offset)
            request.rkey = rkey
            request.immediateData = isLast ? data : 0
        case .rdmaRead(let base, let rkey):
            request.opcode = .rdmaRead
            request.remoteAddress = base + UInt64(request.offset)
            request.rkey = rkey
        }
    }
}

extension WorkRequestPlan.Operation {
    var isRead: Bool {
        if case .rdmaRead = self { return true }
        return false
    }

    /// The peer's address of the first byte, for RDMA WRITE and READ.
    var remoteAddress: UInt64? {
        switch self {
        case .send, .sendWithImmediate: nil
        case .rdmaWrite(let address, _), .rdmaWriteWithImmediate(let address, _, _), .rdmaRead(let address, _): address
        }
    }
}
