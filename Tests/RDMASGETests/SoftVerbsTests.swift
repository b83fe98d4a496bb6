import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs

/// Two connected queue pairs, a source buffer (pattern) and a destination buffer (zeros),
/// each registered with every access.
final class Exchange: @unchecked Sendable {
    let verbs: VerbsPair
    let source = PlainBuffer(pages: 4)
    let destination = PlainBuffer(pages: 4)
    let sourceRegion: SoftMemoryRegion
    let destinationRegion: SoftMemoryRegion

    init(attributes: DeviceAttributes = SoftVerbs.defaultAttributes,
         capabilities: QueuePairCapabilities = QueuePairCapabilities(maxSendWorkRequests: 8, maxReceiveWorkRequests: 8,
                                                                    maxSendSGEs: 4, maxReceiveSGEs: 4, maxInlineData: 64),
         sourceAccess: AccessFlags = .all, destinationAccess: AccessFlags = .all) throws {
        verbs = try VerbsPair(attributes: attributes, capabilities: capabilities)
        for i in 0..<source.bytes.count { source.bytes[i] = UInt8(truncatingIfNeeded: i * 7 + 3) }
        sourceRegion = try verbs.domain.registerMemory(source.bytes, access: sourceAccess)
        destinationRegion = try verbs.domain.registerMemory(destination.bytes, access: destinationAccess)
    }

    func sourceSGE(_ offset: Int, _ length: Int, lkey: UInt32? = nil) -> SGE {
        sge(source.address + UInt(offset), length, lkey ?? sourceRegion.lkey)
    }

    func destinationSGE(_ offset: Int, _ length: Int, lkey: UInt32? = nil) -> SGE {
        sge(destination.address + UInt(offset), length, lkey ?? destinationRegion.lkey)
    }

    func arrived(_ offset: Int, _ length: Int, from sourceOffset: Int) -> Bool {
        memcmp(destination.bytes.baseAddress! + offset, source.bytes.baseAddress! + sourceOffset, length) == 0
    }

    var senderCompletions: [WorkCompletion] { get throws { try verbs.drain(verbs.senderQueue) } }
    var receiverCompletions: [WorkCompletion] { get throws { try verbs.drain(verbs.receiverQueue) } }
}

/// Maps `pages` anonymous pages at `hint` if that is free: far below where the kernel
/// puts mappings of its own choosing, so that a hole a test punches there is not filled
/// by a concurrent test's mmap while the test relies on it.
func mapFarAway(pages: Int, hint: UInt) throws -> UnsafeMutableRawPointer {
    let base = mmap(UnsafeMutableRawPointer(bitPattern: hint), pages * pageSize, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    return try #require(base == MAP_FAILED ? nil : base)
}

@Suite("SoftVerbs conformance")
struct SoftVerbsTests {
    @Test("SEND gathers the sender's SGEs and scatters into the posted receive")
    func sendReceive() throws {
        let x = try Exchange()
        try x.verbs.receive([x.destinationSGE(0, 100), x.destinationSGE(1000, 5000)], id: 7)
        try x.verbs.send([x.sourceSGE(10, 3000), x.sourceSGE(5000, 2000)], id: 1, opcode: .sendWithImmediate, immediateData: 0xabc)
        #expect(x.arrived(0, 100, from: 10) && x.arrived(1000, 2900, from: 110) && x.arrived(3900, 2000, from: 5000))
        #expect(try x.senderCompletions == [WorkCompletion(id: 1, status: .success, opcode: .send, byteCount: 0,
                                                            queuePairNumber: x.verbs.sender.endpoint.number)])
        #expect(try x.receiverCompletions == [WorkCompletion(id: 7, status: .success, opcode: .receive, byteCount: 5000,
                                                              immediateData: 0xabc, queuePairNumber: x.verbs.receiver.endpoint.number)])
    }

    @Test("a SEND waits for a receive, and later requests wait behind it")
    func sendWaitsForReceive() throws {
        let x = try Exchange()
        try x.verbs.send([x.sourceSGE(0, 64)], id: 1)
        try x.verbs.send([x.sourceSGE(64, 64)], id: 2, opcode: .rdmaWrite,
                         remoteAddress: UInt64(x.destination.address + 512), rkey: x.destinationRegion.rkey)
        #expect(try x.senderCompletions.isEmpty)
        #expect(x.destination.bytes[512] == 0, "the WRITE did not overtake the SEND")
        try x.verbs.receive([x.destinationSGE(0, 64)])
        #expect(try x.senderCompletions.map(\.id) == [1, 2])
        #expect(x.arrived(0, 64, from: 0) && x.arrived(512, 64, from: 64))
    }

    @Test("RDMA WRITE with immediate consumes a receive; RDMA READ fills local SGEs")
    func writeAndRead() throws {
        let x = try Exchange()
        try x.verbs.receive([], id: 9)
        try x.verbs.send([x.sourceSGE(0, 4096), x.sourceSGE(8192, 100)], id: 1, opcode: .rdmaWriteWithImmediate,
                         immediateData: 5, remoteAddress: UInt64(x.destination.address + 10), rkey: x.destinationRegion.rkey)
        #expect(x.arrived(10, 4096, from: 0) && x.arrived(4106, 100, from: 8192))
        #expect(try x.receiverCompletions.map { [$0.opcode.rawValue, UInt32($0.byteCount), $0.immediateData ?? 0] }
                == [[WorkCompletionOpcode.receiveRDMAWithImmediate.rawValue, 4196, 5]])
        // READ the peer's source into our destination, in two pieces.
        try x.verbs.send([x.destinationSGE(12000, 100), x.destinationSGE(14000, 300)], id: 2, opcode: .rdmaRead,
                         remoteAddress: UInt64(x.source.address + 20), rkey: x.sourceRegion.rkey)
        #expect(x.arrived(12000, 100, from: 20) && x.arrived(14000, 300, from: 120))
        #expect(try x.senderCompletions.map(\.opcode) == [.rdmaWrite, .rdmaRead])
    }

    @Test("local protection error: unknown lkey, outside the region, READ target without LOCAL_WRITE")
    func localProtection() throws {
        for (case_, make) in [
            ("bad lkey", { (x: Exchange) throws in try x.verbs.send([x.sourceSGE(0, 10, lkey: 0xdead)]) }),
            ("out of bounds", { (x: Exchange) throws in try x.verbs.send([x.sourceSGE(16380, 10)]) }),
            ("READ into read-only", { (x: Exchange) throws in
                let readOnly = try x.verbs.domain.registerMemory(x.source.bytes, access: [])
                try x.verbs.send([sge(x.source.address, 10, readOnly.lkey)], opcode: .rdmaRead,
                                 remoteAddress: UInt64(x.destination.address), rkey: x.destinationRegion.rkey)
            }),
        ] {
            let x = try Exchange()
            try x.verbs.receive([x.destinationSGE(0, 100)])
            try make(x)
            #expect(try x.senderCompletions.map(\.status) == [.localProtectionError], "\(case_)")
            #expect(x.verbs.sender.state == .error, "\(case_)")
        }
    }

    @Test("a receive the responder cannot use: protection and length errors on both sides")
    func receiverErrors() throws {
        let x = try Exchange(destinationAccess: [])
        try x.verbs.receive([x.destinationSGE(0, 100)], id: 3)
        try x.verbs.send([x.sourceSGE(0, 10)])
        #expect(try x.receiverCompletions.map(\.status) == [.localProtectionError])
        #expect(try x.senderCompletions.map(\.status) == [.remoteOperationError])

        let y = try Exchange()
        try y.verbs.receive([y.destinationSGE(0, 100)], id: 3)
        try y.verbs.receive([y.destinationSGE(200, 100)], id: 4)
        try y.verbs.send([y.sourceSGE(0, 101)])
        #expect(try y.receiverCompletions.map(\.status) == [.localLengthError, .workRequestFlushError])
        #expect(try y.senderCompletions.map(\.status) == [.remoteInvalidRequestError])
        #expect(y.verbs.receiver.state == .error && y.verbs.sender.state == .error)
    }

    @Test("local length error: a message longer than the port allows")
    func messageTooLong() throws {
        var attributes = SoftVerbs.defaultAttributes
        attributes.maxMessageSize = 4096
        let x = try Exchange(attributes: attributes)
        try x.verbs.send([x.sourceSGE(0, 4096), x.sourceSGE(5000, 1)], opcode: .rdmaWrite,
                         remoteAddress: UInt64(x.destination.address), rkey: x.destinationRegion.rkey)
        #expect(try x.senderCompletions.map(\.status) == [.localLengthError])
        #expect(x.destination.bytes[0] == 0)
    }

    @Test("remote access error: unknown rkey, outside the region, missing remote access")
    func remoteAccess() throws {
        let readOnly = try Exchange(destinationAccess: [.remoteRead])
        let noRead = try Exchange(sourceAccess: [.localWrite])
        let cases: [(String, Exchange, SendOpcode, (Exchange) -> (UInt64, UInt32))] = [
            ("bad rkey", try Exchange(), .rdmaWrite, { (UInt64($0.destination.address), 0xbad) }),
            ("past the end", try Exchange(), .rdmaWrite, { (UInt64($0.destination.address + 16380), $0.destinationRegion.rkey) }),
            ("WRITE without REMOTE_WRITE", readOnly, .rdmaWrite, { (UInt64($0.destination.address), $0.destinationRegion.rkey) }),
            ("READ without REMOTE_READ", noRead, .rdmaRead, { (UInt64($0.source.address), $0.sourceRegion.rkey) }),
        ]
        for (name, x, opcode, target) in cases {
            let (address, rkey) = target(x)
            let local = opcode == .rdmaRead ? x.destinationSGE(0, 10) : x.sourceSGE(0, 10)
            try x.verbs.send([local], opcode: opcode, remoteAddress: address, rkey: rkey)
            #expect(try x.senderCompletions.map(\.status) == [.remoteAccessError], "\(name)")
            #expect(x.verbs.sender.state == .error, "\(name)")
        }
    }

    @Test("retry exceeded when the responder is not ready")
    func responderNotReady() throws {
        let x = try Exchange()
        try x.verbs.receiver.modify(to: .error, remote: nil)
        try x.verbs.send([x.sourceSGE(0, 10)], opcode: .rdmaWrite,
                         remoteAddress: UInt64(x.destination.address), rkey: x.destinationRegion.rkey)
        #expect(try x.senderCompletions.map(\.status) == [.retryExceededError])
    }

    @Test("moving to error flushes outstanding sends and receives; later posts flush too")
    func flush() throws {
        let after = try Exchange()
        try after.verbs.send([after.sourceSGE(0, 10)], id: 1, flags: [])
        try after.verbs.receive([after.destinationSGE(0, 10)], id: 5, on: after.verbs.sender)
        try after.verbs.sender.modify(to: .error, remote: nil)
        // The SEND was waiting for a receive at the peer; unsignalled, it still reports its flush.
        let flushed = try after.senderCompletions
        #expect(flushed.map(\.id) == [1, 5])
        #expect(flushed.allSatisfy { $0.status == .workRequestFlushError })
        try after.verbs.send([after.sourceSGE(0, 10)], id: 8, flags: [])
        try after.verbs.receive([after.destinationSGE(0, 10)], id: 9, on: after.verbs.sender)
        #expect(try after.senderCompletions.map(\.status) == [.workRequestFlushError, .workRequestFlushError])
    }

    @Test("unsignalled successes report nothing and hold their slot until a signalled completion is polled")
    func unsignalled() throws {
        let x = try Exchange(capabilities: QueuePairCapabilities(maxSendWorkRequests: 2, maxReceiveWorkRequests: 2, maxSendSGEs: 1, maxReceiveSGEs: 1))
        let write: (UInt64, SendFlags) throws -> Void = { id, flags in
            try x.verbs.send([x.sourceSGE(0, 8)], id: id, opcode: .rdmaWrite, flags: flags,
                             remoteAddress: UInt64(x.destination.address), rkey: x.destinationRegion.rkey)
        }
        try write(1, [])
        try write(2, [])
        #expect(throws: VerbsError(.postSend, errno: ENOMEM, "")) { try write(3, .signaled) }
        #expect(try x.senderCompletions.isEmpty)
        let y = try Exchange(capabilities: QueuePairCapabilities(maxSendWorkRequests: 2, maxReceiveWorkRequests: 2, maxSendSGEs: 1, maxReceiveSGEs: 1))
        let writeY: (UInt64, SendFlags) throws -> Void = { id, flags in
            try y.verbs.send([y.sourceSGE(0, 8)], id: id, opcode: .rdmaWrite, flags: flags,
                             remoteAddress: UInt64(y.destination.address), rkey: y.destinationRegion.rkey)
        }
        try writeY(1, [])
        try writeY(2, .signaled)
        #expect(try y.senderCompletions.map(\.id) == [2])
        try writeY(3, [])
        try writeY(4, [])
    }

    @Test("posts are refused: too many SGEs, full queues, wrong state")
    func refusedPosts() throws {
        let x = try Exchange()
        let five = (0..<5).map { x.sourceSGE($0 * 10, 10) }
        #expect(throws: VerbsError(.postSend, errno: EINVAL, "")) { try x.verbs.send(five) }
        #expect(throws: VerbsError(.postReceive, errno: EINVAL, "")) { try x.verbs.receive(five) }
        for id in 0..<8 { try x.verbs.receive([x.destinationSGE(0, 10)], id: UInt64(id)) }
        #expect(throws: VerbsError(.postReceive, errno: ENOMEM, "")) { try x.verbs.receive([x.destinationSGE(0, 10)]) }
        #expect(try x.senderCompletions.isEmpty && x.receiverCompletions.isEmpty, "refused posts complete nothing")

        let idle = try VerbsPair(connect: false)
        #expect(throws: VerbsError(.postReceive, errno: EINVAL, "")) { try idle.receive([]) }
        try idle.sender.modify(to: .initialized, remote: nil)
        #expect(throws: VerbsError(.postSend, errno: EINVAL, "")) { try idle.send([]) }
        try idle.receive([], on: idle.sender)
    }

    @Test("inline data is copied at post time without lkey checks, within the limit")
    func inline() throws {
        let x = try Exchange()
        try x.verbs.receive([x.destinationSGE(0, 64)])
        try x.verbs.send([x.sourceSGE(0, 32, lkey: 0)], flags: [.signaled, .inline])
        #expect(x.arrived(0, 32, from: 0))
        #expect(try x.senderCompletions.map(\.status) == [.success])
        #expect(throws: VerbsError(.postSend, errno: EINVAL, "")) {
            try x.verbs.send([x.sourceSGE(0, 65)], flags: .inline)
        }
        #expect(throws: VerbsError(.postSend, errno: EINVAL, "")) {
            try x.verbs.send([x.destinationSGE(0, 8)], opcode: .rdmaRead, flags: .inline,
                             remoteAddress: UInt64(x.source.address), rkey: x.sourceRegion.rkey)
        }
    }

    @Test("state transitions follow reset → init → RTR → RTS; others are refused")
    func transitions() throws {
        let pair = try VerbsPair(connect: false)
        let qp = pair.sender
        #expect(qp.state == .reset)
        #expect(throws: VerbsError(.modifyQueuePair, errno: EINVAL, "")) { try qp.modify(to: .readyToSend, remote: nil) }
        try qp.modify(to: .initialized, remote: nil)
        #expect(throws: VerbsError(.modifyQueuePair, errno: EINVAL, "")) { try qp.modify(to: .readyToReceive, remote: nil) }
        try qp.modify(to: .readyToReceive, remote: pair.receiver.endpoint)
        try qp.modify(to: .readyToSend, remote: nil)
        #expect(qp.state == .readyToSend)
        try qp.modify(to: .error, remote: nil)
        #expect(qp.state == .error)
        try qp.modify(to: .reset, remote: nil)
        #expect(qp.state == .reset)
        #expect(throws: VerbsError(.modifyQueuePair, errno: EINVAL, "")) {
            try qp.modify(to: .initialized, remote: nil)
            try qp.modify(to: .readyToReceive, remote: QueuePairEndpoint(number: 1, gid: Array("elsewhere".utf8)))
        }
    }

    @Test("registration and creation refuse bad arguments; busy resources cannot be released")
    func resourceRules() throws {
        let verbs = try VerbsPair(connect: false)
        let memory = PlainBuffer(pages: 1)
        #expect(throws: VerbsError(.registerMemory, errno: EINVAL, "")) {
            try verbs.domain.registerMemory(memory.bytes, access: .remoteWrite)
        }
        #expect(throws: VerbsError(.registerMemory, errno: EINVAL, "")) {
            try verbs.domain.registerMemory(address: memory.address, length: 0, access: [])
        }
        let small = try verbs.domain.createCompletionQueue(capacity: 4)
        #expect(throws: VerbsError(.createQueuePair, errno: EINVAL, "")) {
            try verbs.domain.createQueuePair(sendCompletions: small, receiveCompletions: small,
                                             capabilities: QueuePairCapabilities(maxSendWorkRequests: 4, maxReceiveWorkRequests: 4))
        }
        #expect(throws: VerbsError(.createQueuePair, errno: EINVAL, "")) {
            try verbs.domain.createQueuePair(sendCompletions: verbs.senderQueue, receiveCompletions: verbs.senderQueue,
                                             capabilities: QueuePairCapabilities(maxSendSGEs: 33))
        }
        #expect(throws: VerbsError(.destroyCompletionQueue, errno: EBUSY, "")) { try verbs.senderQueue.close() }
        #expect(throws: VerbsError(.deallocateProtectionDomain, errno: EBUSY, "")) { try verbs.domain.close() }
        let region = try verbs.domain.registerMemory(memory.bytes, access: .all)
        try region.deregister()
        try region.deregister()
        #expect(!region.isRegistered)
        try verbs.sender.close()
        try verbs.receiver.close()
        try verbs.senderQueue.close()
        try verbs.domain.close()
    }

    @Test("registration refuses memory that is not mapped with EFAULT, as ibv_reg_mr's page pinning does")
    func unmappedMemory() throws {
        let verbs = try VerbsPair(connect: false)
        // Three mapped pages, the middle one then unmapped: a hole with mapped memory on both sides.
        let base = try mapFarAway(pages: 3, hint: 0x4000_0000_0000)
        defer { munmap(base, 3 * pageSize) }
        #expect(munmap(base + pageSize, pageSize) == 0)
        let address = UInt(bitPattern: base)
        let refused = VerbsError(.registerMemory, errno: EFAULT, "")
        for (what, start, length) in [
            ("the hole", address + UInt(pageSize), pageSize),
            ("one byte of the hole", address + UInt(pageSize) + 100, 1),
            ("a range across the hole", address + 100, 2 * pageSize),
            ("a range that ends in the hole", address + UInt(pageSize) - 1, 2),
            ("page zero", 0, 16),
            ("kernel addresses", UInt.max - UInt(2 * pageSize) + 1, pageSize),
        ] {
            #expect(throws: refused, "\(what)") { try verbs.domain.registerMemory(address: start, length: length, access: .localWrite) }
        }
        #expect(verbs.device.registeredRegionCount == 0, "a refused registration leaves nothing behind")
        // The mapped pages on either side register, including their last and first bytes.
        let before = try verbs.domain.registerMemory(address: address + 10, length: pageSize - 10, access: .localWrite)
        let after = try verbs.domain.registerMemory(address: address + UInt(2 * pageSize), length: pageSize, access: .localWrite)
        #expect(verbs.device.registeredRegionCount == 2)
        try before.deregister()
        try after.deregister()
    }

    @Test("a long range is refused when only its last page is not mapped")
    func unmappedTailOfLongRange() throws {
        let verbs = try VerbsPair(connect: false)
        let pages = 5000
        let base = try mapFarAway(pages: pages, hint: 0x4000_1000_0000)
        defer { munmap(base, pages * pageSize) }
        let address = UInt(bitPattern: base)
        let whole = try verbs.domain.registerMemory(address: address, length: pages * pageSize, access: .localWrite)
        try whole.deregister()
        #expect(munmap(base + (pages - 1) * pageSize, pageSize) == 0)
        #expect(throws: VerbsError(.registerMemory, errno: EFAULT, "")) {
            try verbs.domain.registerMemory(address: address, length: pages * pageSize, access: .localWrite)
        }
        #expect(verbs.device.registeredRegionCount == 0)
    }

    @Test("injected faults: the nth post is refused, the nth completion fails and moves the QP to error")
    func faults() throws {
        let x = try Exchange()
        let write: (UInt64) throws -> Void = { id in
            try x.verbs.send([x.sourceSGE(0, 8)], id: id, opcode: .rdmaWrite,
                             remoteAddress: UInt64(x.destination.address), rkey: x.destinationRegion.rkey)
        }
        x.verbs.device.inject(.post(nth: 2))
        try write(1)
        #expect(throws: VerbsError(.postSend, errno: ENOMEM, "")) { try write(2) }
        try write(3)
        x.verbs.device.inject(.completion(nth: 2, status: .generalError))
        try write(4)
        try write(5)
        try write(6)
        #expect(try x.senderCompletions.map(\.status) == [.success, .success, .success, .generalError, .workRequestFlushError])
        #expect(x.verbs.sender.state == .error)
    }
}
