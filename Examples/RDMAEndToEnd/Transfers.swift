#if RDMA
import IterExtract
import RDMASGE
import TestKit

/// The two 1 MiB buffers of a transfer scenario, with what a backend needs to use
/// them: an MR cache per buffer (for the SGEs extraction builds) and one region per
/// buffer that a peer may read and write (for RDMA READ and WRITE).
final class Buffers<Domain: ProtectionDomain> {
    let source: WholeBuffer
    let target: WholeBuffer
    let sourceKeys: MRCache<Domain>
    let targetKeys: MRCache<Domain>
    let sourceRegion: Domain.Region
    let targetRegion: Domain.Region

    init(domain: Domain, source: WholeBuffer, target: WholeBuffer) throws {
        self.source = source
        self.target = target
        sourceKeys = MRCache(domain: domain, access: .localWrite)
        targetKeys = MRCache(domain: domain, access: .localWrite)
        sourceRegion = try domain.registerMemory(address: source.address, length: source.count, access: .all)
        targetRegion = try domain.registerMemory(address: target.address, length: target.count, access: .all)
    }

    /// Deregisters everything, cached regions first.
    func close() throws {
        sourceKeys.flush()
        targetKeys.flush()
        try sourceRegion.deregister()
        try targetRegion.deregister()
    }
}

/// What one transfer did: the completions both backends must agree on and the
/// digest of the target afterwards.
struct TransferRecord: Equatable {
    var completions: [String] = []
    var digest: UInt64 = 0
}

/// The three 1 MiB transfers of one iterator kind, between the queue pairs of a rig:
/// SEND/RECV (the last request of each plan with immediate data), RDMA WRITE (the
/// last one with immediate data, consuming a zero-SGE receive) and RDMA READ. Both
/// sides' SGEs come from direct extraction of an iterator of `kind` through an MR
/// cache; sends go out as ``WorkRequestPlan``s. Each transfer is checked byte for
/// byte and completion by completion.
struct KindTransfers<Device: VerbsDevice> {
    enum Operation: String, CaseIterable {
        case send = "SEND/RECV"
        case write = "RDMA WRITE"
        case read = "RDMA READ"
    }

    let rig: Rig<Device>
    let buffers: Buffers<Device.Domain>
    let kind: IOIteratorKind
    static var limits: WorkRequestPlan.Limits { WorkRequestPlan.Limits(maxSGEs: 16, maxMessageSize: 64 << 10) }
    static var immediate: UInt32 { 0x1234_5678 }

    /// Runs `operation` and returns its record; throws when a check fails.
    func run(_ operation: Operation, seed: UInt64) throws -> TransferRecord {
        let source = buffers.source, target = buffers.target
        source.fill(seed: seed)
        target.zero()
        var record = TransferRecord()
        switch operation {
        case .send: try send(into: &record)
        case .write: try write(into: &record)
        case .read: try read(into: &record)
        }
        guard source.sameBytes(as: target) else {
            let at = (0..<source.count).first { source.bytes[$0] != target.bytes[$0] } ?? -1
            throw Failure("the target differs from the source first at byte \(at)")
        }
        guard PinLedger.shared.isEmpty, buffers.sourceKeys.referenceCount == 0, buffers.targetKeys.referenceCount == 0 else {
            throw Failure("retention left: \(PinLedger.shared.pinnedPageCount) pinned pages, "
                          + "\(buffers.sourceKeys.referenceCount + buffers.targetKeys.referenceCount) region references")
        }
        record.digest = target.digest
        return record
    }

    private func send(into record: inout TransferRecord) throws {
        var source = buffers.source.iterator(kind, .source)
        var target = buffers.target.iterator(kind, .destination)
        let plan = WorkRequestPlan(requestCapacity: 16, limits: Self.limits)
        var nextID: UInt64 = 0
        while source.count > 0 {
            try plan.build(from: &source, operation: .sendWithImmediate(Self.immediate), keys: buffers.sourceKeys)
            // One receive per planned send, over exactly as many target bytes, extracted directly.
            var receives: [[SGE]] = []
            defer { for sges in receives { target.release(extractedSGEs: sges, keys: buffers.targetKeys) } }
            for request in plan.requests {
                var sges: [SGE] = []
                sges.reserveCapacity(Rig<Device>.capabilities.maxReceiveSGEs)
                let bytes = try target.extract(maxSize: request.byteCount, into: &sges,
                                               maxSGEs: Rig<Device>.capabilities.maxReceiveSGEs, keys: buffers.targetKeys)
                receives.append(sges)
                guard bytes == request.byteCount else {
                    plan.release()
                    throw Failure("a receive covers \(bytes) of \(request.byteCount) bytes")
                }
                try sges.withUnsafeBufferPointer { try rig.b.postReceive(ReceiveWorkRequest(id: 1000 + nextID + UInt64(receives.count - 1), sges: $0)) }
            }
            try post(plan, on: rig.a, queue: rig.aQueue, firstID: nextID, into: &record)
            let received = try rig.drain(rig.bQueue, count: receives.count)
            record.completions += received.map { summary($0, requester: false) }
            try expectSuccess(received)
            nextID += UInt64(receives.count)
        }
    }

    private func write(into record: inout TransferRecord) throws {
        var source = buffers.source.iterator(kind, .source)
        let plan = WorkRequestPlan(requestCapacity: 16, limits: Self.limits)
        var moved: UInt64 = 0
        var nextID: UInt64 = 0
        while source.count > 0 {
            try rig.b.postReceive(ReceiveWorkRequest(id: 2000 + nextID, sges: UnsafeBufferPointer(start: nil, count: 0)))
            let bytes = try plan.build(from: &source, operation: .rdmaWriteWithImmediate(
                remoteAddress: UInt64(buffers.targetRegion.address) + moved, rkey: buffers.targetRegion.rkey,
                immediateData: Self.immediate), keys: buffers.sourceKeys)
            let count = plan.requests.count
            try post(plan, on: rig.a, queue: rig.aQueue, firstID: nextID, into: &record)
            let received = try rig.drain(rig.bQueue, count: 1)
            record.completions += received.map { summary($0, requester: false) }
            try expectSuccess(received)
            moved += UInt64(bytes)
            nextID += UInt64(count)
        }
    }

    private func read(into record: inout TransferRecord) throws {
        var target = buffers.target.iterator(kind, .destination)
        let plan = WorkRequestPlan(requestCapacity: 16, limits: Self.limits)
        var moved: UInt64 = 0
        var nextID: UInt64 = 0
        while target.count > 0 {
            let bytes = try plan.build(from: &target, operation: .rdmaRead(
                remoteAddress: UInt64(buffers.sourceRegion.address) + moved, rkey: buffers.sourceRegion.rkey), keys: buffers.targetKeys)
            let count = plan.requests.count
            try post(plan, on: rig.b, queue: rig.bQueue, firstID: nextID, into: &record)
            moved += UInt64(bytes)
            nextID += UInt64(count)
        }
    }

    /// Posts every request of `plan` signalled, waits for all of their completions and releases the plan.
    private func post(_ plan: WorkRequestPlan, on pair: Rig<Device>.Pair, queue: Rig<Device>.Queue, firstID: UInt64,
                      into record: inout TransferRecord) throws {
        do {
            try plan.post(on: pair, firstID: firstID, signaling: .every)
        } catch {
            try? pair.modify(to: .error, remote: nil)
            _ = try? rig.drain(queue, count: plan.postedCount, seconds: 5)
            plan.release()
            throw error
        }
        let completions: [WorkCompletion]
        do {
            completions = try rig.drain(queue, count: plan.postedCount)
        } catch {
            // The device still names this memory: never give it back early.
            preconditionFailure("requests did not complete, so their memory cannot be released: \(error)")
        }
        plan.release()
        record.completions += completions.map { summary($0, requester: true) }
        try expectSuccess(completions)
    }

    private func expectSuccess(_ completions: [WorkCompletion]) throws {
        if let bad = completions.first(where: { $0.status != .success }) { throw Failure("completion \(bad)") }
    }
}
#endif
