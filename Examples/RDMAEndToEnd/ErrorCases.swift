#if RDMA
import Glibc
import RDMASGE

/// The error cases both backends must report alike, each on fresh queue pairs
/// (a failed request moves its queue pair to the error state): a bad lkey, a bad
/// rkey for RDMA WRITE and READ, a remote range past the region's end, and more
/// SGEs than the queue pair allows.
struct ErrorCases<Device: VerbsDevice> {
    let device: Device
    let domain: Device.Domain
    let buffers: Buffers<Device.Domain>
    /// A key no region has.
    static var bogusKey: UInt32 { 0xdead_beef }

    /// The name of each case and what happened, as text both backends must match.
    func run() throws -> [(name: String, outcome: String)] {
        let source = UInt64(buffers.source.address), target = UInt64(buffers.target.address)
        let lkey = buffers.sourceRegion.lkey, rkey = buffers.targetRegion.rkey
        let page = UInt32(4096)
        return [
            ("bad lkey, RDMA WRITE", try failing([SGE(address: source, length: page, lkey: Self.bogusKey)],
                                                  .rdmaWrite, remote: target, rkey: rkey)),
            ("bad lkey, SEND", try failing([SGE(address: source, length: page, lkey: Self.bogusKey)], .send, receive: true)),
            ("bad rkey, RDMA WRITE", try failing([SGE(address: source, length: page, lkey: lkey)],
                                                  .rdmaWrite, remote: target, rkey: Self.bogusKey)),
            ("bad rkey, RDMA READ", try failing([SGE(address: target, length: page, lkey: buffers.targetRegion.lkey)],
                                                 .rdmaRead, remote: source, rkey: Self.bogusKey)),
            ("remote range past the region's end, RDMA WRITE",
             try failing([SGE(address: source, length: page, lkey: lkey)], .rdmaWrite,
                         remote: target + UInt64(buffers.target.count) - 100, rkey: rkey)),
            ("too many SGEs", try tooManySGEs()),
        ]
    }

    /// Posts one request that must fail and reports its completion and the requester's state.
    private func failing(_ sges: [SGE], _ opcode: SendOpcode, remote: UInt64 = 0, rkey: UInt32 = 0,
                         receive: Bool = false) throws -> String {
        let rig = try Rig<Device>(device: device, domain: domain)
        defer { try? rig.close() }
        if receive {
            let sge = SGE(address: UInt64(buffers.target.address), length: 4096, lkey: buffers.targetRegion.lkey)
            try [sge].withUnsafeBufferPointer { try rig.b.postReceive(ReceiveWorkRequest(id: 77, sges: $0)) }
        }
        try rig.post(sges, on: rig.a, id: 7, opcode: opcode, remoteAddress: remote, rkey: rkey)
        let completion = try rig.drain(rig.aQueue, count: 1, seconds: 30)[0]
        // A device may report the completion just before it records the state change.
        let deadline = now() + 2
        while rig.a.state != .error && now() < deadline { sched_yield() }
        return "\(completion.status), requester \(rig.a.state)"
    }

    /// Posts one more SGE than the queue pair was created with; the post must be refused.
    private func tooManySGEs() throws -> String {
        let rig = try Rig<Device>(device: device, domain: domain)
        defer { try? rig.close() }
        let allowed = rig.a.capabilities.maxSendSGEs
        let sges = (0...allowed).map {
            SGE(address: UInt64(buffers.source.address) + UInt64($0 * 64), length: 64, lkey: buffers.sourceRegion.lkey)
        }
        do {
            try rig.post(sges, on: rig.a, id: 9, opcode: .rdmaWrite,
                         remoteAddress: UInt64(buffers.target.address), rkey: buffers.targetRegion.rkey)
        } catch let error as VerbsError {
            let late = try rig.aQueue.poll()
            return "\(sges.count) SGEs (max \(allowed)) refused by \(error.call) errno \(error.errno), "
                + "\(late == nil ? "no completion" : "a completion"), requester \(rig.a.state)"
        }
        _ = try? rig.drain(rig.aQueue, count: 1, seconds: 5)
        return "\(sges.count) SGEs (max \(allowed)) accepted"
    }
}
#endif
