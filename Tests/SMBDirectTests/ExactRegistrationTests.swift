import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import Testing
import SoftVerbs

/// A client's SMB Direct connection whose registrations a peer reaches by RDMA, on
/// SoftVerbs: the peer's queue pair, in a domain of its own, is connected to a queue
/// pair in the client's domain (a fresh pair per attempt, since a failed RDMA operation
/// moves the requester to the error state).
final class ExposedMemory {
    let device = SoftVerbs()
    let clientDomain: SoftProtectionDomain
    let peerDomain: SoftProtectionDomain
    let connection: SMBDirectConnection<SoftProtectionDomain>
    /// Three pages of the client's, of which the registrations describe bytes 100..<5100.
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * 4096, alignment: 4096)
    /// The peer's own buffer, the local side of its RDMA operations.
    let peerMemory = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * 4096, alignment: 4096)
    let peerRegion: SoftMemoryRegion

    init() throws {
        clientDomain = try device.allocateProtectionDomain()
        peerDomain = try device.allocateProtectionDomain()
        connection = try SMBDirectConnection(domain: clientDomain, role: .initiator)
        memory.initializeMemory(as: UInt8.self, repeating: 0x11)
        peerMemory.initializeMemory(as: UInt8.self, repeating: 0x22)
        peerRegion = try peerDomain.registerMemory(peerMemory, access: .localWrite)
    }

    deinit {
        try? peerRegion.deregister()
        connection.disconnect()
        memory.deallocate()
        peerMemory.deallocate()
    }

    /// The bytes a registration describes.
    var described: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: memory[100..<5100]) }

    /// The peer's `opcode` of `length` bytes at `address` with `rkey`, and how it completed.
    func attempt(_ opcode: SendOpcode, at address: UInt64, length: Int, rkey: UInt32) throws -> WorkCompletionStatus {
        let clientQueue = try clientDomain.createCompletionQueue(capacity: 4)
        let peerQueue = try peerDomain.createCompletionQueue(capacity: 4)
        let capabilities = QueuePairCapabilities(maxSendWorkRequests: 2, maxReceiveWorkRequests: 2, maxSendSGEs: 1, maxReceiveSGEs: 1)
        let responder = try clientDomain.createQueuePair(sendCompletions: clientQueue, receiveCompletions: clientQueue,
                                                         capabilities: capabilities)
        let requester = try peerDomain.createQueuePair(sendCompletions: peerQueue, receiveCompletions: peerQueue,
                                                       capabilities: capabilities)
        defer {
            try? requester.close()
            try? responder.close()
            try? peerQueue.close()
            try? clientQueue.close()
        }
        try SoftQueuePair.connect(requester, responder)
        var sge = SGE(address: UInt64(UInt(bitPattern: peerMemory.baseAddress)), length: UInt32(length), lkey: peerRegion.lkey)
        try withUnsafePointer(to: &sge) { sge in
            try requester.postSend(SendWorkRequest(id: 1, opcode: opcode, sges: UnsafeBufferPointer(start: sge, count: 1),
                                                   remoteAddress: address, rkey: rkey))
        }
        return try #require(try peerQueue.poll()).status
    }

    /// `opcode` one byte before the descriptor, one byte past it, over one byte more at
    /// either end, and over exactly its range, in that order.
    func attemptAround(_ opcode: SendOpcode, _ descriptor: BufferDescriptorV1) throws -> [WorkCompletionStatus] {
        let (start, length, rkey) = (descriptor.offset, Int(descriptor.length), descriptor.token)
        return [
            try attempt(opcode, at: start - 1, length: 1, rkey: rkey),
            try attempt(opcode, at: start + UInt64(length), length: 1, rkey: rkey),
            try attempt(opcode, at: start - 1, length: length + 1, rkey: rkey),
            try attempt(opcode, at: start, length: length + 1, rkey: rkey),
            try attempt(opcode, at: start, length: length, rkey: rkey),
        ]
    }
}

@Suite("SMB Direct registrations are exactly the buffer")
struct ExactRegistrationTests {
    let refused = [WorkCompletionStatus](repeating: .remoteAccessError, count: 4)

    @Test("a peer's RDMA WRITE reaches exactly the bytes of a peer-writable registration, and nothing after release")
    func peerWrites() throws {
        let exposed = try ExposedMemory()
        var iterator = IOIterator(destination: exposed.described)
        let registration = try exposed.connection.register(&iterator, maxSize: 1 << 20)
        let descriptor = try #require(registration.descriptors.first)
        #expect(registration.descriptors.count == 1)
        #expect(descriptor.offset == UInt64(UInt(bitPattern: exposed.described.baseAddress)) && descriptor.length == 5000)
        #expect(try exposed.attemptAround(.rdmaWrite, descriptor) == refused + [.success])
        #expect(exposed.memory[..<100].allSatisfy { $0 == 0x11 }, "nothing landed before the buffer")
        #expect(exposed.memory[100..<5100].allSatisfy { $0 == 0x22 })
        #expect(exposed.memory[5100...].allSatisfy { $0 == 0x11 }, "nothing landed after it")
        #expect(try exposed.attempt(.rdmaRead, at: descriptor.offset, length: 1, rkey: descriptor.token) == .remoteAccessError,
                "memory the peer writes is not readable to it")
        exposed.connection.release(registration)
        #expect(try exposed.attempt(.rdmaWrite, at: descriptor.offset, length: 5000, rkey: descriptor.token) == .remoteAccessError,
                "the rkey is dead once release returns")
        #expect(exposed.connection.peerWritableRegistrations.regionCount == 0)
    }

    @Test("a peer's RDMA READ reaches exactly the bytes of a peer-readable registration, and nothing after release")
    func peerReads() throws {
        let exposed = try ExposedMemory()
        var iterator = IOIterator(source: UnsafeRawBufferPointer(exposed.described))
        let registration = try exposed.connection.register(&iterator, maxSize: 1 << 20)
        let descriptor = try #require(registration.descriptors.first)
        #expect(registration.descriptors.count == 1 && descriptor.length == 5000)
        #expect(try exposed.attemptAround(.rdmaRead, descriptor) == refused + [.success])
        #expect(exposed.peerMemory[..<5000].allSatisfy { $0 == 0x11 })
        #expect(try exposed.attempt(.rdmaWrite, at: descriptor.offset, length: 1, rkey: descriptor.token) == .remoteAccessError,
                "memory the peer reads is not writable to it")
        exposed.connection.release(registration)
        #expect(try exposed.attempt(.rdmaRead, at: descriptor.offset, length: 5000, rkey: descriptor.token) == .remoteAccessError,
                "the rkey is dead once release returns")
        #expect(exposed.connection.peerReadableRegistrations.regionCount == 0)
    }

    @Test("two registrations of neighbouring bytes get regions of their own: neither rkey reaches the other's bytes")
    func neighboursStaySeparate() throws {
        let exposed = try ExposedMemory()
        var first = IOIterator(destination: UnsafeMutableRawBufferPointer(rebasing: exposed.memory[0..<100]))
        var second = IOIterator(destination: exposed.described)
        let a = try exposed.connection.register(&first, maxSize: 1 << 20)
        let b = try exposed.connection.register(&second, maxSize: 1 << 20)
        let (left, right) = (a.descriptors[0], b.descriptors[0])
        #expect(left.token != right.token)
        #expect(try exposed.attempt(.rdmaWrite, at: left.offset, length: 101, rkey: left.token) == .remoteAccessError)
        #expect(try exposed.attempt(.rdmaWrite, at: right.offset - 1, length: 2, rkey: right.token) == .remoteAccessError)
        exposed.connection.release(a)
        #expect(try exposed.attempt(.rdmaWrite, at: right.offset, length: 5000, rkey: right.token) == .success,
                "releasing one leaves the other")
        exposed.connection.release(b)
    }

    @Test("a registration dropped without release(_:) is released: no pin, no region, no live rkey")
    func droppedRegistrationIsReleased() throws {
        let exposed = try ExposedMemory()
        let ledger = PinLedger()
        // User memory, so that the registration pins its pages.
        let user = exposed.described
        var iterator = try IOIterator(ubufAt: UInt(bitPattern: user.baseAddress), count: user.count, direction: .destination)
        var descriptor: BufferDescriptorV1?
        do {
            let registration = try exposed.connection.register(&iterator, maxSize: 1 << 20, ledger: ledger)
            descriptor = registration.descriptors.first
            #expect(ledger.pinnedPageCount > 0)
            #expect(exposed.connection.peerWritableRegistrations.regionCount == 1)
        }
        let dropped = try #require(descriptor)
        #expect(ledger.pinnedPageCount == 0, "the pins were given back")
        #expect(exposed.connection.peerWritableRegistrations.regionCount == 0, "the region was deregistered")
        #expect(try exposed.attempt(.rdmaWrite, at: dropped.offset, length: 1, rkey: dropped.token) == .remoteAccessError,
                "the rkey is dead")
    }
}
