#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract

/// Moves the bytes of a source iterator to a buffer through two connected queue
/// pairs of one device, by RDMA WRITE or SEND, plan by plan, and verifies them.
///
/// The source's memory is registered through an ``MRCache``; the destination is
/// registered once. This is the logic of the `SoftVerbsLoopback` example, written
/// against the verbs protocols so that it runs on any backend.
public struct LoopbackTransfer<Device: VerbsDevice> {
    /// How the bytes travel.
    public enum Method: String, Sendable, CaseIterable {
        /// RDMA WRITE into the destination's region.
        case rdmaWrite = "write"
        /// SEND into receives posted over the destination.
        case send
    }

    /// What went wrong.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The verbs backend refused a call.
        case verbs(VerbsError)
        /// Extracting the source or destination to SGEs failed.
        case extraction(RDMAError)
        /// A request completed with a status other than success.
        case completion(WorkCompletionStatus)
        /// The destination differs from the source, first at `offset`.
        case mismatch(offset: Int)
        /// The destination is smaller than the source.
        case destinationTooSmall(needed: Int, available: Int)

        /// What went wrong, in a sentence for logs and error messages.
        public var description: String {
            switch self {
            case .verbs(let error): "\(error)"
            case .extraction(let error): "\(error)"
            case .completion(let status): "a request completed with \(status)"
            case .mismatch(let offset): "the bytes differ at offset \(offset)"
            case .destinationTooSmall(let needed, let available): "the destination holds \(available) of \(needed) bytes"
            }
        }
    }

    /// The device.
    public let device: Device
    /// How the bytes travel.
    public let method: Method
    /// The shape of each work request.
    public let limits: WorkRequestPlan.Limits
    /// The requests per plan.
    public let requestsPerPlan: Int

    /// A transfer of plans of `requestsPerPlan` requests shaped by `limits`. For
    /// ``Method/send`` each request's payload lands in one receive SGE, so
    /// `limits.maxMessageSize` above `UInt32.max` is a programmer error and traps.
    public init(device: Device, method: Method, limits: WorkRequestPlan.Limits, requestsPerPlan: Int = 16) {
        precondition(method != .send || limits.maxMessageSize <= Int(UInt32.max),
                     "a SEND of more than UInt32.max bytes does not fit one receive SGE")
        self.device = device
        self.method = method
        self.limits = limits
        self.requestsPerPlan = requestsPerPlan
    }

    /// Moves every byte of `source` into `destination`, calling `progress` with the
    /// bytes moved and the total after each plan completes, then compares the bytes.
    /// Releases every pin the transfer took and every resource it made.
    ///
    /// - Returns: The bytes moved.
    public func run(source: inout IOIterator, into destination: UnsafeMutableRawBufferPointer,
                    ledger: PinLedger = .shared, progress: (Int, Int) -> Void = { _, _ in }) throws(Failure) -> Int {
        let total = source.count
        guard destination.count >= total else { throw .destinationTooSmall(needed: total, available: destination.count) }
        let original = source
        try transfer(&source, into: destination, ledger: ledger, progress: progress)
        var check = original
        var offset = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while offset < total {
            let n = chunk.withUnsafeMutableBytes { check.copy(into: $0) }
            let differs = chunk.withUnsafeBytes { memcmp($0.baseAddress!, destination.baseAddress! + offset, n) != 0 }
            if differs {
                let at = (0..<n).first { chunk[$0] != destination[offset + $0] }!
                throw .mismatch(offset: offset + at)
            }
            offset += n
        }
        return total
    }

    private func transfer(_ source: inout IOIterator, into destination: UnsafeMutableRawBufferPointer,
                          ledger: PinLedger, progress: (Int, Int) -> Void) throws(Failure) {
        let total = source.count
        do throws(any Error) {
            let domain = try device.allocateProtectionDomain()
            defer { try? domain.close() }
            let capabilities = QueuePairCapabilities(
                maxSendWorkRequests: requestsPerPlan, maxReceiveWorkRequests: requestsPerPlan,
                maxSendSGEs: limits.maxSGEs, maxReceiveSGEs: 1, maxInlineData: limits.inlineThreshold)
            let sendQueue = try domain.createCompletionQueue(capacity: 2 * requestsPerPlan)
            defer { try? sendQueue.close() }
            let receiveQueue = try domain.createCompletionQueue(capacity: 2 * requestsPerPlan)
            defer { try? receiveQueue.close() }
            let sender = try domain.createQueuePair(sendCompletions: sendQueue, receiveCompletions: sendQueue, capabilities: capabilities)
            defer { try? sender.close() }
            let receiver = try domain.createQueuePair(sendCompletions: receiveQueue, receiveCompletions: receiveQueue, capabilities: capabilities)
            defer { try? receiver.close() }
            try Device.Domain.QueuePairType.connect(sender, receiver)
            let target = try domain.registerMemory(
                address: UInt(bitPattern: destination.baseAddress), length: max(destination.count, 1),
                access: [.localWrite, .remoteWrite])
            defer { try? target.deregister() }
            let cache = MRCache(domain: domain, access: .localWrite)
            defer { cache.flush() }
            let plan = WorkRequestPlan(requestCapacity: requestsPerPlan, limits: limits)
            var moved = 0
            while source.count > 0 {
                let operation: WorkRequestPlan.Operation = method == .send
                    ? .send : .rdmaWrite(remoteAddress: UInt64(target.address) + UInt64(moved), rkey: target.rkey)
                let bytes = try plan.build(from: &source, operation: operation, keys: cache, ledger: ledger)
                if bytes == 0 { break }
                if method == .send {
                    try postReceives(for: plan, at: moved, in: target, on: receiver)
                }
                do {
                    try plan.post(on: sender, signaling: .every)
                } catch {
                    // Whatever went out must finish before the retention is given back.
                    try? sender.modify(to: .error, remote: nil)
                    _ = try? plan.complete(polling: sendQueue)
                    throw error
                }
                let status = try plan.complete(polling: sendQueue)
                guard status == .success else { throw Failure.completion(status) }
                if method == .send {
                    for _ in plan.requests {
                        guard let completion = try receiveQueue.poll() else { throw Failure.completion(.generalError) }
                        guard completion.status == .success else { throw Failure.completion(completion.status) }
                    }
                }
                moved += bytes
                progress(moved, total)
            }
        } catch let error as VerbsError {
            throw .verbs(error)
        } catch let error as RDMAError {
            throw .extraction(error)
        } catch let failure as Failure {
            throw failure
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// Posts one receive per planned request, each over the destination bytes its payload fills.
    private func postReceives(for plan: WorkRequestPlan, at offset: Int, in target: Device.Domain.Region,
                              on receiver: Device.Domain.QueuePairType) throws(VerbsError) {
        for (index, request) in plan.requests.enumerated() {
            var sge = SGE(address: UInt64(target.address) + UInt64(offset + request.offset),
                          length: UInt32(request.byteCount), lkey: target.lkey)
            try withUnsafePointer(to: &sge) { (pointer) throws(VerbsError) in
                try receiver.postReceive(ReceiveWorkRequest(id: UInt64(index), sges: UnsafeBufferPointer(start: pointer, count: 1)))
            }
        }
    }
}
