import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing
import SoftVerbs

/// What the caller of a transfer gets, typed.
enum TransferFailure: Error, Equatable, CustomStringConvertible {
    /// Building a plan failed (extraction, MR-cache registration).
    case extraction(RDMAError)
    /// A verbs call was refused (registration of the local region, a post).
    case verbs(VerbsError)
    /// The plan reported a send-queue completion status other than success.
    case completion(WorkCompletionStatus)
    /// A receive completed with a status other than success.
    case receive(WorkCompletionStatus)

    var description: String {
        switch self {
        case .extraction(let error): "extraction: \(error)"
        case .verbs(let error): "verbs: \(error)"
        case .completion(let status): "completion: \(status)"
        case .receive(let status): "receive: \(status)"
        }
    }
}

/// A queue pair that forwards to a SoftVerbs one, counts the sends posted through it,
/// and runs a hook just before each (to move a queue pair to error mid-transfer).
final class HookedQueuePair: QueuePair, @unchecked Sendable {
    let inner: SoftQueuePair
    var beforeSend: (Int) -> Void = { _ in }
    var afterSend: (SendWorkRequest) -> Void = { _ in }
    private(set) var sendCalls = 0

    init(_ inner: SoftQueuePair) { self.inner = inner }

    var endpoint: QueuePairEndpoint { inner.endpoint }
    var state: QueuePairState { inner.state }
    var capabilities: QueuePairCapabilities { inner.capabilities }
    func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        try inner.modify(to: state, remote: remote)
    }
    func postSend(_ request: SendWorkRequest) throws(VerbsError) {
        sendCalls += 1
        beforeSend(sendCalls)
        try inner.postSend(request)
        afterSend(request)
    }
    func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError) {
        for (index, request) in requests.enumerated() {
            do throws(VerbsError) { try postSend(request) } catch {
                var refused = error
                refused.failedRequest = index
                throw refused
            }
        }
    }
    func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError) { try inner.postReceive(request) }
    func close() throws(VerbsError) { try inner.close() }
}

/// A completion queue that forwards to a SoftVerbs one and keeps every completion polled.
final class RecordingQueue: CompletionQueue, @unchecked Sendable {
    let inner: SoftCompletionQueue
    private(set) var completions: [WorkCompletion] = []

    init(_ inner: SoftCompletionQueue) { self.inner = inner }

    var capacity: Int { inner.capacity }
    func poll(into buffer: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        let n = try inner.poll(into: buffer)
        completions.append(contentsOf: buffer[..<n])
        return n
    }
    var channel: (any CompletionChannel)? { inner.channel }
    func requestNotification(solicitedOnly: Bool) throws(VerbsError) { try inner.requestNotification(solicitedOnly: solicitedOnly) }
    func takeNotification() -> Bool { inner.takeNotification() }
    func close() throws(VerbsError) { try inner.close() }

    /// Polls until the queue is empty.
    func drain() throws {
        while try poll() != nil {}
    }
}

/// Local memory (one page pool, several segments with gaps between them) and a remote
/// buffer, both filled with seeded random bytes. The layout is fixed, so two instances
/// make the same registrations and the same requests.
final class FaultMemory: @unchecked Sendable {
    /// (offset in the pool, length): pieces crossing pages, a page-aligned page, one byte.
    static let segmentLayout: [(offset: Int, length: Int)] = [
        (300, 9_000), (16_461, 30_000), (49_152, 4_096), (53_500, 20_000), (81_925, 1), (90_000, 40_000),
    ]
    /// Where the transfer lands in (or, for RDMA READ, comes from) the remote buffer.
    static let remoteOffset = 5_000

    let pool: PagePool
    let remote: PlainBuffer
    /// The segments as IOVEC, KVEC and BVEC describe them.
    let memory: IteratorMemory
    let total: Int

    init(seed: UInt64) {
        pool = try! PagePool(pageCount: 40)
        remote = PlainBuffer(pages: 32)
        let base = UInt(bitPattern: pool.baseAddress)
        let ranges = Self.segmentLayout.map { MemoryRange(address: base + UInt($0.offset), length: $0.length) }
        memory = IteratorMemory(pool: pool, segments: ranges, bioVecs: ranges.map(IteratorMemory.bioVec(over:)))
        total = Self.segmentLayout.reduce(0) { $0 + $1.length }
        precondition(Self.remoteOffset + total + 1000 <= remote.bytes.count)
        fillRandom(localBytes, seed: seed)
        fillRandom(remote.bytes, seed: seed &+ 0x9E37_79B9)
    }

    var localBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pool.baseAddress, count: pool.byteCount) }

    /// The iterator's memory, in stream order.
    var localRanges: [MemoryRange] {
        let base = UInt(bitPattern: pool.baseAddress)
        return Self.segmentLayout.map { MemoryRange(address: base + UInt($0.offset), length: $0.length) }
    }

    /// The fixture made the memory, so making the iterator cannot throw.
    func iterator(_ kind: IOIteratorKind, _ direction: IODirection) -> IOIterator { memory.iterator(kind, direction) }

    /// Both memories, as they are now.
    func snapshot() -> (local: [UInt8], remote: [UInt8]) { (Array(localBytes), Array(remote.bytes)) }

    /// The memories as they must be when the first `prefix` bytes of the transfer moved
    /// and nothing else changed, from the snapshot taken before the transfer.
    func expected(from before: (local: [UInt8], remote: [UInt8]), path: FaultPath, prefix: Int) -> (local: [UInt8], remote: [UInt8]) {
        var result = before
        let base = UInt(bitPattern: pool.baseAddress)
        var streamOffset = 0
        for range in localRanges where streamOffset < prefix {
            let n = min(range.length, prefix - streamOffset)
            let local = Int(range.address - base)
            let remote = Self.remoteOffset + streamOffset
            if path == .rdmaRead {
                result.local.replaceSubrange(local..<local + n, with: before.remote[remote..<remote + n])
            } else {
                result.remote.replaceSubrange(remote..<remote + n, with: before.local[local..<local + n])
            }
            streamOffset += n
        }
        return result
    }

    /// Where the memory differs from `image` first, described, or nil when it does not.
    func firstDifference(from image: (local: [UInt8], remote: [UInt8]), path: FaultPath) -> String? {
        let now = snapshot()
        let base = UInt(bitPattern: pool.baseAddress)
        if let i = now.local.indices.first(where: { now.local[$0] != image.local[$0] }) {
            let address = base + UInt(i)
            let inDestination = path == .rdmaRead && localRanges.contains { address >= $0.address && address < $0.address + UInt($0.length) }
            return "local byte \(i) (\(inDestination ? "inside the destination" : "outside the destination")): \(now.local[i]), expected \(image.local[i])"
        }
        if let i = now.remote.indices.first(where: { now.remote[$0] != image.remote[$0] }) {
            let inDestination = path != .rdmaRead && i >= Self.remoteOffset && i < Self.remoteOffset + total
            return "remote byte \(i) (\(inDestination ? "inside the destination" : "outside the destination / guard")): \(now.remote[i]), expected \(image.remote[i])"
        }
        return nil
    }

    /// Whether the memory equals `image`, compared with memcmp.
    func matches(_ image: (local: [UInt8], remote: [UInt8])) -> Bool {
        image.local.withUnsafeBytes { memcmp($0.baseAddress!, pool.baseAddress, pool.byteCount) == 0 }
            && image.remote.withUnsafeBytes { memcmp($0.baseAddress!, remote.bytes.baseAddress!, remote.bytes.count) == 0 }
    }
}

func fillRandom(_ bytes: UnsafeMutableRawBufferPointer, seed: UInt64) {
    var random = SplitMix64(seed: seed)
    let words = bytes.count / 8
    for i in 0..<words { bytes.storeBytes(of: random.next(), toByteOffset: i * 8, as: UInt64.self) }
    for i in words * 8..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: random.next()) }
}

/// One operation that succeeded, in the order the transfer did them.
enum TransferEvent: Equatable {
    case registration
    case build(requests: Int)
    case postReceive
    case postSend(bytes: Int)
}

/// The fault, armed: N resolved from the baseline.
enum ArmedFault {
    case device(SoftVerbsFault)
    case requesterError(beforeSend: Int)
    case responderError(beforeSend: Int)
}

/// What one transfer did and left behind.
struct TransferRecord {
    var failure: TransferFailure?
    var events: [TransferEvent] = []
    /// Identifier → bytes of every send the device accepted.
    var postedSends: [UInt64: Int] = [:]
    var postedReceives: [UInt64] = []
    var sendCompletions: [WorkCompletion] = []
    var receiveCompletions: [WorkCompletion] = []
    /// Completions that arrived on a second drain after the teardown drained everything.
    var lateCompletions = 0
    var pinnedPages = 0
    var cacheReferences = 0
    var planRetaining = false
    /// Regions registered on the device once the cache was flushed and the local region
    /// deregistered (the remote region, registered by the peer, remains).
    var regionsLeft = 0
}
