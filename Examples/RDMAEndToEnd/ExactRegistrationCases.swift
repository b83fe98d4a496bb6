#if RDMA
import Glibc
import IBVerbs
import IterExtract
import RDMASGE
import SoftVerbs

/// Memory exposed to a peer through `ExactRegistrations`, as SMB Direct exposes the
/// buffers its descriptors name: a 100-byte buffer at an odd address, inside a page
/// whose other bytes are not the peer's. The peer's RDMA WRITE and READ of exactly the
/// buffer succeed; one byte before it, one byte past it, and the exact range once the
/// registration is released, fail with a remote access error.
struct ExactRegistrationCases<Device: VerbsDevice> {
    let device: Device
    let domain: Device.Domain
    let buffers: Buffers<Device.Domain>

    /// Each case's name, the status it must complete with, and the one it did.
    func run() throws -> [(name: String, expected: WorkCompletionStatus, status: WorkCompletionStatus)] {
        guard let page = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              page != MAP_FAILED else { throw Failure("mmap of a page failed") }
        defer { munmap(page, pageSize) }
        let length = 100
        let exposed = UInt(bitPattern: page) + 1001
        let exposure = ExactRegistrations(domain: domain, access: [.localWrite, .remoteRead, .remoteWrite])
        let key = try exposure.resolve(MemoryRange(address: exposed, length: length), access: .remoteWrite, retaining: true)
        guard let rkey = exposure.region(lkey: key.lkey)?.rkey else { throw Failure("no region for the exposed buffer") }
        let remote = UInt64(exposed)
        var outcomes: [(String, WorkCompletionStatus, WorkCompletionStatus)] = []
        let cases: [(String, UInt64, Int, WorkCompletionStatus)] = [
            ("exactly the buffer", remote, length, .success), ("one byte before it", remote - 1, length, .remoteAccessError),
            ("one byte past it", remote, length + 1, .remoteAccessError),
        ]
        for (name, address, count, expected) in cases {
            for opcode in [SendOpcode.rdmaWrite, .rdmaRead] {
                outcomes.append(("\(opcode) of \(name)", expected, try status(opcode, remote: address, count: count, rkey: rkey)))
            }
        }
        exposure.release(lkey: key.lkey)
        for opcode in [SendOpcode.rdmaWrite, .rdmaRead] {
            outcomes.append(("\(opcode) of exactly the buffer after release", .remoteAccessError,
                             try status(opcode, remote: remote, count: length, rkey: rkey)))
        }
        return outcomes
    }

    /// Posts one RDMA WRITE or READ of `count` bytes between the registered source
    /// buffer and `remote` under `rkey`, on fresh queue pairs, and returns its status.
    private func status(_ opcode: SendOpcode, remote: UInt64, count: Int, rkey: UInt32) throws -> WorkCompletionStatus {
        let rig = try Rig<Device>(device: device, domain: domain)
        defer { try? rig.close() }
        let local = SGE(address: UInt64(buffers.source.address), length: UInt32(count), lkey: buffers.sourceRegion.lkey)
        try rig.post([local], on: rig.a, id: 5, opcode: opcode, remoteAddress: remote, rkey: rkey)
        return try rig.drain(rig.aQueue, count: 1, seconds: 30)[0].status
    }
}

extension Suite {
    /// The exact-registration cases on the device and on SoftVerbs, which must agree.
    func exactRegistrationCases(ib: IBVerbsProtectionDomain, soft softDomain: SoftProtectionDomain) throws {
        let ibBuffers = try Buffers(domain: ib, source: source, target: target)
        let softBuffers = try Buffers(domain: softDomain, source: source, target: target)
        defer { try? ibBuffers.close(); try? softBuffers.close() }
        let ibOutcomes = try ExactRegistrationCases(device: device, domain: ib, buffers: ibBuffers).run()
        let softOutcomes = try ExactRegistrationCases(device: soft, domain: softDomain, buffers: softBuffers).run()
        for ((name, expected, status), (_, _, softStatus)) in zip(ibOutcomes, softOutcomes) {
            report.check(status == expected && softStatus == status,
                         "exact registration on \(device.name), peer's \(name): \(status) (SoftVerbs \(softStatus))")
        }
    }
}
#endif
