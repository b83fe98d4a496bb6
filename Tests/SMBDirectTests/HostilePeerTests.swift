import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import Testing
import SoftVerbs

// A peer is hostile (issue 15): what it sends, and what its device reports, is
// checked before use, and memory held on its behalf is bounded by configuration.
// Each test here trapped or grew without bound before the fix.

/// A buffer registered in `domain` for the peer's own RDMA operations.
private func peerBuffer(_ count: Int, in domain: SoftProtectionDomain) throws -> (UnsafeMutableRawBufferPointer, SoftMemoryRegion) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: pageSize)
    buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
    return (buffer, try domain.registerMemory(buffer, access: [.localWrite]))
}

@Suite("SMB Direct against a hostile peer")
struct HostilePeerTests {
    @Test("an RDMA WRITE WITH IMMEDIATE into a receive ends the connection with a typed error, not a trap")
    func writeWithImmediate() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device)
        let ledger = PinLedger(mode: .exact)
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: pageSize)
        defer { destination.deallocate() }
        // The client exposes a destination, as for an SMB2 READ: the peer now holds a writable rkey.
        var iterator = try IOIterator(ubufAt: UInt(bitPattern: destination.baseAddress), count: destination.count,
                                  direction: .destination)
        let registration = try loop.initiator.register(&iterator, maxSize: destination.count, ledger: ledger)
        let descriptor = try #require(registration.descriptors.first)
        let (buffer, region) = try peerBuffer(64 << 10, in: loop.responderDomain)
        defer { buffer.deallocate() }
        var sge = SGE(address: UInt64(UInt(bitPattern: buffer.baseAddress)), length: descriptor.length, lkey: region.lkey)
        try withUnsafePointer(to: &sge) { pointer in
            try loop.responder.queuePair.postSend(SendWorkRequest(
                id: 0xDEAD, opcode: .rdmaWriteWithImmediate, sges: UnsafeBufferPointer(start: pointer, count: 1),
                flags: .signaled, immediateData: 7, remoteAddress: descriptor.offset, rkey: descriptor.token))
        }
        #expect(throws: SMBDirectError.unexpectedCompletion(.receiveRDMAWithImmediate, byteCount: Int(descriptor.length))) {
            try loop.initiator.progress()
        }
        #expect(loop.initiator.hasFailed)
        expectNothingInFlight(loop.initiator, "initiator")
        loop.initiator.release(registration)
        expectReleased(loop.initiator, "initiator")
        #expect(ledger.isEmpty)
        try region.deregister()
    }

    @Test("a duplicated completion ends the connection instead of releasing a send slot twice")
    func duplicateCompletion() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device)
        let ledger = PinLedger(mode: .exact)
        device.inject(.duplicateCompletion(nth: 1))
        var thrown: SMBDirectError?
        do {
            try send([1], payload: randomBytes(10_000, seed: 3), on: loop.initiator, ledger: ledger)
            _ = try loop.responder.receiveMessage()
        } catch let error as SMBDirectError {
            thrown = error
        }
        let failed = [loop.initiator.state, loop.responder.state].compactMap { state -> SMBDirectError? in
            if case .failed(let error) = state { error } else { nil }
        }
        #expect(thrown != nil)
        #expect(failed.contains { if case .unexpectedCompletion = $0 { true } else { false } }, "\(failed)")
        loop.initiator.disconnect()
        loop.responder.disconnect()
        for (connection, side) in [(loop.initiator, "initiator"), (loop.responder, "responder")] {
            expectNothingInFlight(connection, side)
            expectReleased(connection, side)
        }
        #expect(ledger.isEmpty)
        #expect(device.registeredRegionCount == 0)
    }

    @Test("completions polled out of order still deliver every message")
    func reversedPoll() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device, initiator: SMBDirectConfiguration(maxSendSize: 1024))
        let payload = randomBytes(200_000, seed: 4)
        for nth in 1...4 {
            device.inject(.reversedPoll(nth: nth))
            try send([9], payload: payload, on: loop.initiator)
            #expect(try loop.responder.receiveMessage() == [9] + payload)
        }
        try loop.close()
    }

    @Test("a peer that keeps sending while the application reads nothing stalls on credits; memory stays bounded")
    func boundedReceiveBacklog() throws {
        let device = SoftVerbs()
        let backlog = 64 << 10
        let loop = try SMBDirectLoopback(
            device: device, initiator: SMBDirectConfiguration(receiveCreditMax: 16, maxReceiveBacklog: backlog),
            responder: SMBDirectConfiguration(timeout: .milliseconds(300)))
        // The client's first message grants the server its credits.
        try loop.initiator.send([0])
        _ = try loop.responder.receiveMessage()
        let message = randomBytes(16 << 10, seed: 5)
        var sent = 0
        var stall: SMBDirectError?
        while sent < 64 {
            do {
                try send([], payload: message, on: loop.responder)
                sent += 1
            } catch let error as SMBDirectError {
                stall = error
                break
            }
            #expect(loop.initiator.heldReceiveBytes <= loop.initiator.receiveMemoryBound)
        }
        guard case .timedOut = stall else {
            Issue.record("the peer sent \(sent) messages of 16 KiB without a stall: \(String(describing: stall))")
            return
        }
        let held = loop.initiator.heldReceiveBytes
        #expect(held >= backlog && held <= backlog + (16 << 10) + 16 * 8192, "held \(held) bytes")
        #expect(loop.initiator.statistics.receivesParked > 0)
        #expect(loop.initiator.credits.postedReceives < 16, "parked receives were not granted back")
    }

    @Test("receives parked while the backlog was full are granted back as the application reads")
    func parkedReceivesReturnAsTheApplicationReads() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(
            device: device, initiator: SMBDirectConfiguration(receiveCreditMax: 32, maxReceiveBacklog: 16 << 10))
        try loop.initiator.send([0])
        _ = try loop.responder.receiveMessage()
        let messages = (0..<40).map { randomBytes(6000, seed: UInt64($0)) }
        // Sending all 40 needs the client to read: the reader is the responder's idle handler.
        var received: [[UInt8]] = []
        let forward = loop.responder.idleHandler
        loop.responder.idleHandler = {
            forward?()
            if let message = try? loop.initiator.nextMessage() { received.append(message) }
        }
        for message in messages { try send([], payload: message, on: loop.responder) }
        while received.count < messages.count { received.append(try loop.initiator.receiveMessage()) }
        #expect(received == messages)
        #expect(loop.initiator.statistics.receivesParked > 0, "the backlog never filled")
        #expect(loop.initiator.heldReceiveBytes == 0)
        try loop.close()
    }

    @Test("credits granted beyond the total asked for are ignored")
    func excessCredits() {
        var credits = SMBDirectCredits(target: 255)
        credits.negotiated(sendCredits: 65535, peerCredits: 0, peerTarget: 1)
        #expect(credits.sendCredits == 255)
        credits.spendSendCredit()
        #expect(credits.received(granted: 65535, requested: 1) == 65534)
        #expect(credits.sendCredits == 255)
    }

    @Test("an empty upper-layer message is refused with a typed error and the connection stays up")
    func emptyMessage() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs())
        #expect(throws: SMBDirectError.emptyMessage) { try loop.initiator.send([UInt8]()) }
        #expect(loop.initiator.state == .connected)
        try loop.initiator.send([1, 2, 3])
        #expect(try loop.responder.receiveMessage() == [1, 2, 3])
        try loop.close()
    }

    @Test("descriptors longer than the local buffer are refused before any RDMA operation")
    func descriptorsBeyondTheLocalBuffer() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs())
        let (buffer, region) = try peerBuffer(4096, in: loop.responderDomain)
        defer { buffer.deallocate() }
        let descriptors = [BufferDescriptorV1(offset: 0x1000, token: 1, length: 8192)]
        #expect(throws: SMBDirectError.descriptorsExceedBuffer(length: 8192, bufferSize: 4096)) {
            try loop.responder.read(from: descriptors, into: buffer, lkey: region.lkey)
        }
        #expect(loop.responder.state == .connected)
        try region.deregister()
        try loop.close()
    }

    @Test("a queue pair that cannot be destroyed keeps the memory the device may reach")
    func queuePairDestructionFails() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device)
        let before = device.registeredRegionCount
        device.inject(.destroyQueuePair(nth: 1))
        loop.initiator.disconnect()
        #expect(loop.initiator.teardownError?.errno == EBUSY)
        #expect(device.registeredRegionCount == before, "the arena stayed registered")
        loop.responder.disconnect()
        #expect(loop.responder.teardownError == nil)
    }

    @Test("a duplicated RDMA completion ends the transfer instead of counting another operation as done")
    func duplicateRDMACompletion() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device, responder: SMBDirectConfiguration(maxRDMAOperations: 2))
        let ledger = PinLedger(mode: .exact)
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * pageSize, alignment: pageSize)
        defer { source.deallocate() }
        source.initializeMemory(as: UInt8.self, repeating: 6)
        var iterator = try IOIterator(ubufAt: UInt(bitPattern: source.baseAddress), count: source.count, direction: .source)
        let registration = try loop.initiator.register(&iterator, maxSize: source.count, maxDescriptors: 1, ledger: ledger)
        let descriptor = try #require(registration.descriptors.first)
        let pieces = (0..<3).map { BufferDescriptorV1(offset: descriptor.offset + UInt64($0 * pageSize), token: descriptor.token,
                                                      length: UInt32(pageSize)) }
        let (buffer, region) = try peerBuffer(3 * pageSize, in: loop.responderDomain)
        defer { buffer.deallocate() }
        device.inject(.duplicateCompletion(nth: 1))
        #expect(throws: SMBDirectError.unexpectedCompletion(.rdmaRead, byteCount: 0)) {
            try loop.responder.read(from: pieces, into: buffer, lkey: region.lkey)
        }
        expectNothingInFlight(loop.responder, "responder")
        loop.initiator.release(registration)
        #expect(ledger.isEmpty)
        try region.deregister()
    }
}
