import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import Testing
import SoftVerbs

/// Negotiation, credits, fragmentation and keepalives over SoftVerbs.
@Suite("SMB Direct transport")
struct TransportTests {
    @Test("negotiation agrees on the smaller sizes, both roles")
    func negotiation() throws {
        let client = SMBDirectConfiguration(sendCreditTarget: 30, maxSendSize: 1364, maxReceiveSize: 4096, maxReadWriteSize: 1 << 20)
        let server = SMBDirectConfiguration(receiveCreditMax: 20, maxSendSize: 2048, maxReceiveSize: 1200,
                                            maxFragmentedSize: 1 << 18, maxReadWriteSize: 1 << 19)
        let loop = try SMBDirectLoopback(device: SoftVerbs(), initiator: client, responder: server)
        let initiator = try #require(loop.initiator.limits)
        let responder = try #require(loop.responder.limits)
        #expect(initiator.maxSendSize == 1200)
        #expect(responder.maxSendSize == 2048)
        #expect(responder.maxReceiveSize == 1200)
        #expect(initiator.maxFragmentedSendSize == 1 << 18)
        #expect(responder.maxFragmentedSendSize == 1 << 20)
        #expect(initiator.maxReadWriteSize == 1 << 19)
        #expect(loop.initiator.credits.sendCredits == 20, "the responder grants its posted receives, within the target")
        #expect(loop.responder.credits.sendCredits == 0, "the responder holds no credit before the first grant")
        try loop.close()
    }

    @Test("a 10 MiB message goes through a 1 KiB max send size, at most 5 payload SGEs a message, byte-exact")
    func fragmentation() throws {
        let configuration = SMBDirectConfiguration(maxSendSize: 1024, maxReceiveSize: 1024, maxFragmentedSize: 16 << 20)
        let loop = try SMBDirectLoopback(device: SoftVerbs(), initiator: configuration, responder: configuration)
        let pool = try PagePool(pageCount: 2600, placement: .shuffled(seed: 7))
        let pages = try pool.allocatePages(count: 2561)
        let cache = PageCache()
        for (index, page) in pages.enumerated() {
            try cache.insert(Folio(head: page, order: 0), at: index)
            randomBytes(pageSize, seed: UInt64(index)).withUnsafeBytes { page.baseAddress.copyMemory(from: $0.baseAddress!, byteCount: pageSize) }
        }
        let size = 10 << 20
        var iterator = try IOIterator(pageCache: cache, position: 100, count: size, direction: .source)
        var expected = [UInt8](repeating: 0, count: size)
        var copy = iterator
        expected.withUnsafeMutableBytes { _ = copy.copy(into: $0) }
        let prefix: [UInt8] = [0xFE, 0x53, 0x4D, 0x42]
        try prefix.withUnsafeBytes { bytes in
            try loop.initiator.send(bytes, payload: &iterator, keys: loop.initiator.sendRegistrations)
        }
        #expect(iterator.count == 0)
        let received = try loop.responder.receiveMessage()
        #expect(received.count == size + 4)
        #expect(received == prefix + expected)
        let statistics = loop.initiator.statistics
        #expect(statistics.messagesSent >= (size + 4 + 999) / 1000)
        #expect(statistics.maxSGEsPerMessage <= 6)
        #expect(statistics.maxSGEsPerMessage >= 2)
        #expect(statistics.payloadSGEsSent > statistics.messagesSent, "shuffled pages need several SGEs a message")
        #expect(statistics.creditStalls > 0, "10 000 messages need more credits than one grant")
        #expect(loop.initiator.sendRegistrations.referenceCount == 0)
        try loop.close()
    }

    @Test("a peer that grants one credit at a time and keeps 3 receives still gets a 1 MiB message through")
    func slowGranter() throws {
        let client = SMBDirectConfiguration(maxSendSize: 1024)
        let server = SMBDirectConfiguration(receiveCreditMax: 3, maxCreditsPerGrant: 1)
        let loop = try SMBDirectLoopback(device: SoftVerbs(), initiator: client, responder: server)
        #expect(loop.initiator.credits.sendCredits == 1)
        let payload = randomBytes((1 << 20) - 1, seed: 3)
        try send([1], payload: payload, on: loop.initiator)
        #expect(try loop.responder.receiveMessage() == [1] + payload)
        #expect(loop.initiator.statistics.creditStalls > 100)
        #expect(loop.responder.statistics.emptyMessagesSent > 100, "every credit came in its own grant")
        #expect(loop.initiator.credits.sendCredits <= 3)
        // And back: the server's answer needs the credits the client granted.
        try loop.responder.send([9, 9, 9])
        #expect(try loop.initiator.receiveMessage() == [9, 9, 9])
        try loop.close()
    }

    @Test("a keepalive asks for an answer and gets one; the connection stays up")
    func keepalive() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs())
        try loop.initiator.sendKeepalive()
        #expect(loop.initiator.awaitsKeepaliveAnswer)
        try loop.responder.progress()
        #expect(loop.responder.statistics.keepalivesAnswered == 1)
        #expect(loop.responder.statistics.emptyMessagesSent == 1)
        try loop.initiator.progress()
        #expect(!loop.initiator.awaitsKeepaliveAnswer, "the answer cleared the keepalive")
        #expect(loop.initiator.state == .connected)
        try loop.close()
    }

    @Test("an unanswered keepalive ends the connection with everything released")
    func keepaliveTimeout() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device, initiator: SMBDirectConfiguration(keepaliveInterval: .milliseconds(20)))
        loop.initiator.idleHandler = nil
        usleep(30_000)
        try loop.initiator.progress()
        #expect(loop.initiator.statistics.keepalivesSent == 1, "an idle interval sends a keepalive")
        usleep(30_000)
        #expect(throws: SMBDirectError.keepaliveTimeout) { try loop.initiator.progress() }
        #expect(loop.initiator.state == .failed(.keepaliveTimeout))
        #expect(throws: SMBDirectError.keepaliveTimeout) { try loop.initiator.send([1]) }
    }

    @Test("a message beyond the peer's fragmented size is refused before anything is sent")
    func tooLarge() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs(), responder: SMBDirectConfiguration(maxFragmentedSize: 1 << 17))
        let payload = [UInt8](repeating: 1, count: (1 << 17) + 1)
        #expect(throws: SMBDirectError.messageTooLarge(length: (1 << 17) + 1, limit: 1 << 17)) {
            try send([], payload: payload, on: loop.initiator)
        }
        #expect(loop.initiator.statistics.messagesSent == 0)
        #expect(loop.initiator.state == .connected)
        try loop.close()
    }
}

@Suite("SMB Direct credits and reassembly")
struct CreditAccountingTests {
    @Test("credits requested is a total, granted an increment; the last credit needs a credit left with the peer")
    func credits() {
        var credits = SMBDirectCredits(target: 10, maxGrant: 4)
        credits.posted(8)
        credits.negotiated(sendCredits: 1, peerCredits: 0, peerTarget: 6)
        #expect(credits.pendingGrant == 6)
        #expect(!credits.maySend(granting: 0), "the last credit must not leave the peer without one")
        #expect(credits.maySend(granting: 1))
        #expect(credits.takeGrant() == 4)
        credits.spendSendCredit()
        #expect(credits.peerCredits == 4 && credits.pendingGrant == 2)
        let consumed = credits.consumeReceive()
        #expect(consumed)
        credits.received(granted: 3, requested: 8)
        #expect(credits.sendCredits == 3 && credits.peerTarget == 8)
        #expect(credits.pendingGrant == 4, "7 posted, 3 promised, target 8")
        var empty = SMBDirectCredits(target: 1)
        let accepted = empty.consumeReceive()
        #expect(!accepted, "a message the peer had no credit for")
    }

    @Test("fragments reassemble; inconsistent and oversized ones are refused")
    func reassembly() throws {
        var reassembler = FragmentReassembler(maxMessageSize: 10)
        let bytes: [UInt8] = Array(0..<10)
        try bytes.withUnsafeBytes { raw in
            #expect(try reassembler.append(UnsafeRawBufferPointer(rebasing: raw[0..<4]), remaining: 6) == nil)
            #expect(try reassembler.append(UnsafeRawBufferPointer(rebasing: raw[4..<7]), remaining: 3) == nil)
            #expect(try reassembler.append(UnsafeRawBufferPointer(rebasing: raw[7..<10]), remaining: 0) == bytes)
            #expect(throws: SMBDirectDecodingError.fragmentedMessageTooLong(length: 11, limit: 10)) {
                try reassembler.append(UnsafeRawBufferPointer(rebasing: raw[0..<4]), remaining: 7)
            }
            _ = try reassembler.append(UnsafeRawBufferPointer(rebasing: raw[0..<4]), remaining: 6)
            #expect(throws: SMBDirectDecodingError.inconsistentFragment(expectedRemaining: 6, dataLength: 4, remaining: 1)) {
                try reassembler.append(UnsafeRawBufferPointer(rebasing: raw[0..<4]), remaining: 1)
            }
        }
    }

    @Test("the received-message tap sees every message as it arrived, before decoding")
    func receivedMessageTap() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device)
        var seen: [[UInt8]] = []
        loop.responder.receivedMessageTap = { seen.append(Array($0)) }
        try loop.initiator.send([1, 2, 3])
        #expect(try loop.responder.receiveMessage() == [1, 2, 3])
        let last = try #require(seen.last)
        let header = try last.withUnsafeBytes { bytes in
            try SMBDirectDataTransfer(decoding: bytes, maxReceiveSize: 8192, maxFragmentedSize: 1 << 20)
        }
        #expect(header.dataLength == 3 && Array(last[header.payloadRange]) == [1, 2, 3])
        #expect(seen.count == loop.responder.statistics.messagesReceived)
        try loop.close()
    }
}
