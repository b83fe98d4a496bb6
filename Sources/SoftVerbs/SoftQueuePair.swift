#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// A reliable-connected queue pair of a ``SoftVerbs`` device.
public final class SoftQueuePair: QueuePair, @unchecked Sendable {
    let device: SoftVerbs
    let number: UInt32
    public let capabilities: QueuePairCapabilities

    init(device: SoftVerbs, number: UInt32, capabilities: QueuePairCapabilities) {
        self.device = device
        self.number = number
        self.capabilities = capabilities
    }

    public var endpoint: QueuePairEndpoint { QueuePairEndpoint(number: number, gid: Array(device.name.utf8)) }

    public var state: QueuePairState {
        device.state.withLock { $0.pairs[number]?.state ?? .error }
    }

    public func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        try withPair(.modifyQueuePair) { (soft) throws(VerbsError) in
            if let remote, remote.gid != Array(device.name.utf8) {
                throw VerbsError(.modifyQueuePair, errno: EINVAL, "SoftVerbs connects queue pairs of one device only")
            }
            try soft.modify(number, to: state, remote: remote?.number)
        }
    }

    public func postSend(_ request: SendWorkRequest) throws(VerbsError) {
        try withPair(.postSend) { (soft) throws(VerbsError) in try soft.postSend(number, request) }
    }

    public func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError) {
        try withPair(.postReceive) { (soft) throws(VerbsError) in try soft.postReceive(number, request) }
    }

    public func close() throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            if state.pairs[number] != nil, state.faults.destroyFails() {
                throw VerbsError(.destroyQueuePair, errno: EBUSY, "injected destruction failure")
            }
            state.destroyPair(number)
        }
    }

    deinit { device.state.withLock { $0.destroyPair(number) } }

    private func withPair(_ call: VerbsCall, _ body: (inout SoftVerbsState) throws(VerbsError) -> Void) throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            guard state.pairs[number] != nil else { throw VerbsError(call, errno: EINVAL, "the queue pair was destroyed") }
            try body(&state)
        }
    }
}
