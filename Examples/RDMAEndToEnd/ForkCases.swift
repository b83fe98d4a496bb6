#if RDMA
import Glibc
import RDMASGE
import TestKit
import IBVerbs

/// Fork safety of registered private memory on a libibverbs device: an RDMA READ
/// into a registered buffer, and an RDMA WRITE out of one, each with a `fork()`
/// while the request is in flight and a child that overwrites the same buffer at
/// once and again after the request completed. The parent must receive (or send)
/// exactly the original bytes, and the child must see only its own writes.
struct ForkCases {
    let device: IBVerbs
    let domain: IBVerbsProtectionDomain
    let peer: WholeBuffer
    static let size = 1 << 20

    enum Direction: String { case read = "RDMA READ into", write = "RDMA WRITE from" }

    /// Runs one case; returns what the parent and the child saw.
    func run(_ direction: Direction) throws -> String {
        guard let buffer = mmap(nil, Self.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              buffer != MAP_FAILED else { throw Failure("mmap failed") }
        defer { munmap(buffer, Self.size) }
        let peerRegion = try domain.registerMemory(address: peer.address, length: peer.count, access: .all)
        defer { try? peerRegion.deregister() }
        let region = try domain.registerMemory(address: UInt(bitPattern: buffer), length: Self.size, access: .all)
        defer { try? region.deregister() }
        let rig = try Rig(device: device, domain: domain)
        defer { try? rig.close() }

        // The bytes the parent must end with: the peer's for a READ, its own for a WRITE.
        peer.fill(seed: direction == .read ? 0xF0 : 0xF1)
        if direction == .read { memset(buffer, 0, Self.size) } else { memcpy(buffer, peer.mapping.baseAddress, Self.size) }
        let expected = [UInt8](UnsafeRawBufferPointer(start: peer.mapping.baseAddress, count: Self.size))
        if direction == .write { peer.zero() }

        var signal: [Int32] = [0, 0]
        guard pipe(&signal) == 0 else { throw Failure("pipe failed") }
        let sge = SGE(address: UInt64(UInt(bitPattern: buffer)), length: UInt32(Self.size), lkey: region.lkey)
        try rig.post([sge], on: rig.a, id: 1, opcode: direction == .read ? .rdmaRead : .rdmaWrite,
                     remoteAddress: UInt64(peerRegion.address), rkey: peerRegion.rkey)
        let child = fork()
        if child == 0 {
            // The child: overwrite the buffer now, and again once the parent says the request completed.
            close(signal[1])
            memset(buffer, 0xAA, Self.size)
            var byte: UInt8 = 0
            _ = read(signal[0], &byte, 1)
            memset(buffer, 0xBB, Self.size)
            let own = UnsafeRawBufferPointer(start: buffer, count: Self.size).allSatisfy { $0 == 0xBB }
            _exit(own ? 0 : 3)
        }
        close(signal[0])
        guard child > 0 else { throw Failure("fork failed: errno \(errno)") }
        let completion = try rig.drain(rig.aQueue, count: 1, seconds: 60)[0]
        var byte: UInt8 = 1
        _ = write(signal[1], &byte, 1)
        close(signal[1])
        var status: Int32 = 0
        waitpid(child, &status, 0)
        let childSawOwnWrites = (status & 0x7f) == 0 && (status >> 8) & 0xff == 0
        let parentBytes = direction == .read
            ? UnsafeRawBufferPointer(start: buffer, count: Self.size).elementsEqual(expected)
            : UnsafeRawBufferPointer(start: peer.mapping.baseAddress, count: Self.size).elementsEqual(expected)
            && UnsafeRawBufferPointer(start: buffer, count: Self.size).elementsEqual(expected)
        guard completion.status == .success, parentBytes, childSawOwnWrites else {
            throw Failure("completion \(completion.status), parent's bytes intact \(parentBytes), child saw only its own writes \(childSawOwnWrites)")
        }
        return direction == .read
            ? "the parent received the peer's 1 MiB intact; the child's writes stayed in the child"
            : "the peer received the parent's 1 MiB intact, the parent's buffer is unchanged; the child's writes stayed in the child"
    }
}

extension Suite {
    func forkCases(ib: IBVerbsProtectionDomain) throws {
        let protection = IBVerbs.forkProtection
        report.check(protection != .disabled, "fork protection of registered memory: \(protection)")
        let cases = ForkCases(device: device, domain: ib, peer: source)
        for direction in [ForkCases.Direction.read, .write] {
            report.attempt("fork() during an \(direction.rawValue) a registered private buffer") {
                let outcome = try cases.run(direction)
                report.check(true, "fork() during an \(direction.rawValue) a registered private buffer: \(outcome)")
            }
        }
    }
}
#endif
