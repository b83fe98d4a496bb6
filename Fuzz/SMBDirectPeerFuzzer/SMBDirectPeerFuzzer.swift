import IterExtract
import RDMASGE
import SMBDirect
import SoftVerbs

/// A hostile SMB Direct server, played by the fuzz input against the real client
/// state machine on SoftVerbs: each input is a script of steps, each step one thing a
/// peer (or its device, or the client's own application) can do at any point of a
/// connection's life. The peer sends negotiate responses and data transfer messages
/// with any field values, raw bytes of any length, RDMA READ, WRITE and WRITE WITH
/// IMMEDIATE against the client's registrations with any offset, length and key,
/// and disconnects; the device duplicates, reorders and fails completions; the client
/// registers and releases memory, sends, reads and progresses.
///
/// After every step: no trap (a trap crashes the fuzzer), received memory within
/// ``SMBDirectConnection/receiveMemoryBound``, no work counted in flight below zero,
/// no send slot freed twice. After the client's teardown: no pin, no region
/// reference, no registration left, every work request accounted for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let session = PeerSession()
    session.run(&input)
    session.finish()
    return 0
}

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

/// The client's configuration: small, so that credits run out, fragments and parked
/// receives happen within a short script, yet large enough for a real server's
/// messages (the seeds captured from ksmbd); a short timeout, so that a wait for a
/// peer that never answers ends quickly.
private let clientConfiguration = SMBDirectConfiguration(
    receiveCreditMax: 8, sendCreditTarget: 8, maxSendSize: 1364, maxReceiveSize: 2048,
    maxFragmentedSize: 128 << 10, maxReadWriteSize: 64 << 10, timeout: .milliseconds(2),
    maxRDMAOperations: 4, maxReceiveBacklog: 4 << 10)

/// The server's half: a raw queue pair and one registered buffer, no protocol logic.
final class HostilePeer {
    static let receiveSlots = 8
    static let slotSize = 4096
    static let sendSlots = 4
    static let rdmaSize = 64 << 10

    let domain: SoftProtectionDomain
    let completionQueue: SoftCompletionQueue
    let queuePair: SoftQueuePair
    let memory: UnsafeMutableRawBufferPointer
    let region: SoftMemoryRegion
    var receivesPosted = 0
    var nextSendSlot = 0
    var nextWorkID: UInt64 = 0

    init(device: SoftVerbs) throws(VerbsError) {
        domain = try device.allocateProtectionDomain()
        completionQueue = try domain.createCompletionQueue(capacity: 512)
        queuePair = try domain.createQueuePair(
            sendCompletions: completionQueue, receiveCompletions: completionQueue,
            capabilities: QueuePairCapabilities(maxSendWorkRequests: 64, maxReceiveWorkRequests: Self.receiveSlots,
                                                maxSendSGEs: 1, maxReceiveSGEs: 1))
        let size = (Self.receiveSlots + Self.sendSlots) * Self.slotSize + Self.rdmaSize
        memory = .allocate(byteCount: size, alignment: pageSize)
        memory.initializeMemory(as: UInt8.self, repeating: 0xA5)
        region = try domain.registerMemory(memory, access: [.localWrite])
    }

    func address(_ offset: Int) -> UInt64 { UInt64(UInt(bitPattern: memory.baseAddress) + UInt(offset)) }

    func post(_ opcode: SendOpcode, local offset: Int, length: Int, remoteAddress: UInt64 = 0, rkey: UInt32 = 0) {
        var sge = SGE(address: address(offset), length: UInt32(length), lkey: region.lkey)
        nextWorkID += 1
        let id = nextWorkID
        withUnsafePointer(to: &sge) { pointer in
            try? queuePair.postSend(SendWorkRequest(
                id: id, opcode: opcode, sges: UnsafeBufferPointer(start: pointer, count: 1), flags: .signaled,
                immediateData: 0xC0FFEE, remoteAddress: remoteAddress, rkey: rkey))
        }
    }

    func postReceive() {
        guard receivesPosted < Self.receiveSlots else { return }
        var sge = SGE(address: address(receivesPosted * Self.slotSize), length: UInt32(Self.slotSize), lkey: region.lkey)
        let posted: Bool = withUnsafePointer(to: &sge) { pointer in
            (try? queuePair.postReceive(ReceiveWorkRequest(id: 1 << 40, sges: UnsafeBufferPointer(start: pointer, count: 1)))) != nil
        }
        if posted { receivesPosted += 1 }
    }

    /// Sends `bytes` as one message from the next send slot.
    func send(_ bytes: [UInt8]) {
        let slot = nextSendSlot
        nextSendSlot = (nextSendSlot + 1) % Self.sendSlots
        let offset = (Self.receiveSlots + slot) * Self.slotSize
        let length = min(bytes.count, Self.slotSize)
        UnsafeMutableRawBufferPointer(rebasing: memory[offset..<offset + length]).copyBytes(from: bytes[..<length])
        post(.send, local: offset, length: length)
    }

    var rdmaOffset: Int { (Self.receiveSlots + Self.sendSlots) * Self.slotSize }

    /// Takes every completion off the peer's queue.
    func drain() {
        while let completion = try? completionQueue.poll() {
            if completion.id == 1 << 40 { receivesPosted -= 1 }
        }
    }

    func close() {
        try? queuePair.modify(to: .error, remote: nil)
        drain()
        try? queuePair.close()
        drain()
        try? completionQueue.close()
        try? region.deregister()
        try? domain.close()
        memory.deallocate()
    }
}

/// A registration the client holds, in a box: registrations cannot be copied into an array.
final class HeldRegistration {
    var registration: SMBDirectRegistration?
    let descriptors: [BufferDescriptorV1]

    init(_ registration: consuming SMBDirectRegistration) {
        descriptors = registration.descriptors
        self.registration = Optional(registration)
    }
}

final class PeerSession {
    let device = SoftVerbs()
    let ledger = PinLedger(mode: .exact)
    let clientDomain: SoftProtectionDomain
    let client: SMBDirectConnection<SoftProtectionDomain>
    let peer: HostilePeer
    /// The client application's memory, which it registers, sends from and reads into.
    let clientMemory: UnsafeMutableRawBufferPointer
    var held: [HeldRegistration] = []

    init() {
        do {
            clientDomain = try device.allocateProtectionDomain()
            client = try SMBDirectConnection(domain: clientDomain, role: .initiator, configuration: clientConfiguration)
            peer = try HostilePeer(device: device)
            try SoftQueuePair.connect(client.queuePair, peer.queuePair)
        } catch {
            fatalError("setting up the connection failed: \(error)")
        }
        clientMemory = .allocate(byteCount: 64 << 10, alignment: pageSize)
        clientMemory.initializeMemory(as: UInt8.self, repeating: 0x3C)
        peer.postReceive()
        try? client.start()
    }

    func run(_ input: inout FuzzInput) {
        var steps = 0
        while !input.isExhausted, steps < 96 {
            steps += 1
            step(&input)
            peer.drain()
            checkInvariants()
        }
    }

    func checkInvariants() {
        check(client.heldReceiveBytes <= client.receiveMemoryBound,
              "the client holds \(client.heldReceiveBytes) received bytes, beyond its bound \(client.receiveMemoryBound)")
        check(client.sendsInFlight >= 0 && client.receivesInFlight >= 0 && client.rdmaInFlight >= 0,
              "work counted below zero: \(client.sendsInFlight) sends, \(client.receivesInFlight) receives, \(client.rdmaInFlight) RDMA")
        check(Set(client.freeSendSlots).count == client.freeSendSlots.count && client.freeSendSlots.count <= client.sendSlotCount,
              "a send slot was freed twice: \(client.freeSendSlots)")
        check(client.parkedReceives.count + client.receivesInFlight <= client.receiveSlotCount,
              "more receives than slots: \(client.parkedReceives.count) parked, \(client.receivesInFlight) posted")
    }

    func step(_ input: inout FuzzInput) {
        switch input.byte() % 13 {
        case 0: peer.postReceive()
        case 1: peer.send(negotiateResponse(&input))
        case 2: peer.send(dataTransfer(&input))
        case 3: peer.send(input.bytes(input.number(below: HostilePeer.slotSize + 1)))
        case 4: rdma(&input)
        case 5: register(&input)
        case 6: release(input.byte())
        case 7: try? client.progress()
        case 8: _ = try? client.nextMessage()
        case 9: sendFromClient(&input)
        case 10: injectFault(&input)
        case 11: disconnect(input.byte())
        default: try? client.sendKeepalive()
        }
    }

    /// A credit count: the interesting edges more often than the rest.
    func credits(_ input: inout FuzzInput) -> UInt16 {
        let choice = input.byte()
        switch choice % 4 {
        case 0: return UInt16(choice >> 2)
        case 1: return [0, 1, 7, 8, 9, 255, 256, 65535][choice >> 2 & 7]
        default: return UInt16(input.number(below: 65536))
        }
    }

    /// A size field: near the client's own limits, or anything.
    func size(_ input: inout FuzzInput) -> UInt32 {
        let choice = input.byte()
        let near: [UInt32] = [0, 1, 20, 24, 128, 1364, 2048, 2049, 8192, 128 << 10, (128 << 10) + 1, 1 << 20, .max]
        return choice % 2 == 0 ? near[(choice >> 1) % near.count] : UInt32(input.number(below: 1 << 16)) << UInt32(input.byte() % 16)
    }

    func negotiateResponse(_ input: inout FuzzInput) -> [UInt8] {
        let versions = input.byte()
        let response = SMBDirectNegotiateResponse(
            minVersion: versions & 1 == 0 ? smbDirectProtocolVersion : UInt16(input.number(below: 65536)),
            maxVersion: versions & 2 == 0 ? smbDirectProtocolVersion : UInt16(input.number(below: 65536)),
            negotiatedVersion: versions & 4 == 0 ? smbDirectProtocolVersion : UInt16(input.number(below: 65536)),
            creditsRequested: credits(&input), creditsGranted: credits(&input),
            status: versions & 8 == 0 ? SMBDirectNegotiateResponse.statusSuccess : UInt32(input.number(below: 1 << 16)) << 16,
            maxReadWriteSize: size(&input), preferredSendSize: size(&input), maxReceiveSize: size(&input),
            maxFragmentedSize: size(&input))
        var bytes = [UInt8](repeating: 0, count: SMBDirectNegotiateResponse.size)
        _ = bytes.withUnsafeMutableBytes { response.encode(into: $0) }
        return truncatedOrExtended(bytes, &input)
    }

    func dataTransfer(_ input: inout FuzzInput) -> [UInt8] {
        let flags = input.byte()
        let payloadLength = input.number(below: 2100)
        let remaining: UInt32 = switch flags >> 4 {
        case 0: 0
        case 1: UInt32(input.number(below: 1 << 16))
        case 2: size(&input)
        default: 0
        }
        let header = SMBDirectDataTransfer(
            creditsRequested: credits(&input), creditsGranted: credits(&input),
            flags: flags & 1 == 0 ? [] : .responseRequested, remainingDataLength: remaining,
            dataLength: UInt32(payloadLength))
        var bytes = [UInt8](repeating: 0, count: header.encodedSize)
        _ = bytes.withUnsafeMutableBytes { header.encode(into: $0) }
        bytes += input.bytes(payloadLength)
        // Now and then a field the encoder would not write: DataOffset, DataLength, lengths.
        if flags & 2 != 0 {
            let field = [12, 16, 8][input.byte() % 3]
            let value = size(&input)
            for index in 0..<4 where field + index < bytes.count { bytes[field + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
        }
        return truncatedOrExtended(bytes, &input)
    }

    /// The message as it is, cut short, or with bytes after it.
    func truncatedOrExtended(_ bytes: [UInt8], _ input: inout FuzzInput) -> [UInt8] {
        switch input.byte() % 8 {
        case 0: return Array(bytes.prefix(input.number(below: bytes.count + 1)))
        case 1: return bytes + input.bytes(input.byte())
        default: return bytes
        }
    }

    func rdma(_ input: inout FuzzInput) {
        let opcodes: [SendOpcode] = [.rdmaWrite, .rdmaRead, .rdmaWriteWithImmediate]
        let opcode = opcodes[input.byte() % 3]
        let shape = input.byte()
        var remoteAddress: UInt64 = UInt64(input.number(below: 1 << 16)) << 12
        var rkey = UInt32(input.number(below: 1 << 16))
        var length = input.number(below: HostilePeer.rdmaSize + 1)
        if !held.isEmpty, shape & 1 == 0 {
            let registration = held[input.byte() % held.count]
            if let descriptor = registration.descriptors.isEmpty ? nil : registration.descriptors[input.byte() % registration.descriptors.count] {
                // Exactly the descriptor, or a few bytes off at either end.
                let delta = Int(Int8(truncatingIfNeeded: input.byte()))
                remoteAddress = shape & 2 == 0 ? descriptor.offset : descriptor.offset &+ UInt64(bitPattern: Int64(delta))
                rkey = shape & 4 == 0 ? descriptor.token : descriptor.token ^ UInt32(input.byte())
                length = shape & 8 == 0 ? Int(descriptor.length) : max(0, min(HostilePeer.rdmaSize, Int(descriptor.length) + delta))
            }
        }
        peer.post(opcode, local: peer.rdmaOffset, length: length, remoteAddress: remoteAddress, rkey: rkey)
    }

    func register(_ input: inout FuzzInput) {
        guard held.count < 6 else { return }
        let start = input.number(below: clientMemory.count)
        let count = 1 + input.number(below: clientMemory.count - start)
        let direction: IODirection = input.byte() % 2 == 0 ? .source : .destination
        var iterator = try! IOIterator(ubufAt: UInt(bitPattern: clientMemory.baseAddress) + UInt(start), count: count,
                                  direction: direction)
        let before = iterator.count
        guard let registration = try? client.register(&iterator, maxSize: 1 + input.number(below: count),
                                                      maxDescriptors: 1 + input.byte() % 16, ledger: ledger) else {
            check(iterator.count == before, "a failed registration moved the iterator")
            return
        }
        held.append(HeldRegistration(registration))
    }

    func release(_ choice: Int) {
        guard !held.isEmpty else { return }
        let box = held.remove(at: choice % held.count)
        if let registration = box.registration.take() { client.release(registration) }
    }

    func sendFromClient(_ input: inout FuzzInput) {
        let prefix = input.bytes(input.byte() % 80)
        let start = input.number(below: clientMemory.count)
        let count = input.number(below: min(clientMemory.count - start, 4096) + 1)
        var payload = try! IOIterator(ubufAt: UInt(bitPattern: clientMemory.baseAddress) + UInt(start), count: count, direction: .source)
        _ = prefix.withUnsafeBytes { bytes in
            try? client.send(bytes, payload: &payload, keys: client.sendRegistrations, ledger: ledger)
        }
    }

    func injectFault(_ input: inout FuzzInput) {
        let nth = 1 + input.byte() % 4
        switch input.byte() % 5 {
        case 0: device.inject(.duplicateCompletion(nth: nth))
        case 1: device.inject(.reversedPoll(nth: nth))
        case 2: device.inject(.completion(nth: nth, status: [.retryExceededError, .remoteAccessError, .localProtectionError][nth % 3]))
        case 3: device.inject(.post(nth: nth))
        default: device.inject(.registration(nth: nth))
        }
    }

    func disconnect(_ choice: Int) {
        switch choice % 3 {
        case 0: try? peer.queuePair.modify(to: .error, remote: nil)
        case 1: client.disconnect()
        default: try? client.close()
        }
    }

    /// Ends the session as an application would, then checks that nothing is left.
    func finish() {
        for box in held {
            if let registration = box.registration.take() { client.release(registration) }
        }
        held.removeAll()
        client.disconnect()
        check(client.teardownError == nil, "tear-down could not destroy the queue pair: \(String(describing: client.teardownError))")
        check(client.sendsInFlight == 0 && client.receivesInFlight == 0 && client.rdmaInFlight == 0,
              "work left in flight after tear-down")
        check(ledger.isEmpty, "\(ledger.pinnedPageCount) pages still pinned after tear-down")
        let cache = client.sendRegistrations
        check(cache.referenceCount == 0 && cache.regionCount == 0,
              "the send cache holds \(cache.referenceCount) references on \(cache.regionCount) regions after tear-down")
        check(cache.statistics.registrations == cache.statistics.deregistrations, "the send cache left a registration: \(cache.statistics)")
        for registrations in [client.peerReadableRegistrations, client.peerWritableRegistrations] {
            check(registrations.regionCount == 0, "\(registrations.regionCount) regions exposed to the peer after tear-down")
        }
        peer.close()
        try? clientDomain.close()
        check(device.registeredRegionCount == 0, "\(device.registeredRegionCount) regions still registered on the device")
        clientMemory.deallocate()
    }
}
