#if RDMA
import IterExtract
import RDMASGE

/// RDMA WRITE of 64 KiB messages, each built by extracting an IOVEC of 16 separate
/// 4 KiB buffers through an MR cache, for a fixed volume, with up to `depth` plans
/// in flight (a plan per message, released when its completion comes back).
struct Throughput<Device: VerbsDevice> {
    let device: Device
    let domain: Device.Domain
    let target: Device.Domain.Region

    struct Measurement {
        var bytes: Int
        var seconds: Double
        /// Mebibytes per second, the unit perftest's `MB/sec` column uses.
        var mebibytesPerSecond: Double { Double(bytes) / seconds / Double(1 << 20) }
    }

    func run(volume: Int, depth: Int) throws -> Measurement {
        let memory = try SeparateBuffers(count: 16)
        let message = memory.byteCount
        let rig = try Rig<Device>(device: device, domain: domain, capabilities: QueuePairCapabilities(
            maxSendWorkRequests: depth, maxReceiveWorkRequests: 1, maxSendSGEs: 16, maxReceiveSGEs: 1))
        defer { try? rig.close() }
        let cache = MRCache(domain: domain, access: .localWrite)
        defer { cache.flush() }
        let limits = WorkRequestPlan.Limits(maxSGEs: 16, maxMessageSize: message)
        let plans = (0..<depth).map { _ in WorkRequestPlan(requestCapacity: 1, limits: limits) }
        var free = Array(plans.indices.reversed())
        let messages = volume / message
        let slots = target.length / message
        var posted = 0, completed = 0
        let start = now()
        let deadline = start + 120
        while completed < messages {
            while posted < messages, let slot = free.popLast() {
                var iterator = memory.iterator()
                let remote = UInt64(target.address) + UInt64((posted % slots) * message)
                let bytes = try plans[slot].build(from: &iterator, operation: .rdmaWrite(remoteAddress: remote, rkey: target.rkey),
                                                  keys: cache)
                guard bytes == message, plans[slot].requests.count == 1 else {
                    throw Failure("a message planned as \(plans[slot].requests.count) requests of \(bytes) bytes")
                }
                try plans[slot].post(on: rig.a, firstID: UInt64(slot), signaling: .every)
                posted += 1
            }
            guard let completion = try rig.aQueue.poll() else {
                guard now() < deadline else { throw Failure("\(completed) of \(messages) messages within 120 s") }
                continue
            }
            guard completion.status == .success else { throw Failure("message completed with \(completion)") }
            plans[Int(completion.id)].release()
            free.append(Int(completion.id))
            completed += 1
        }
        let seconds = now() - start
        guard cache.statistics.misses == 16 else { throw Failure("MR cache misses \(cache.statistics.misses), expected one per buffer") }
        return Measurement(bytes: messages * message, seconds: seconds)
    }
}
#endif
