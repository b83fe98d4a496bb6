import IterExtract
import RDMASGE
import SMBDirect
import Testing
import SoftVerbs

/// Error and orderly shutdown: all posted work flushed, every buffer, pin and region released.
@Suite("SMB Direct shutdown")
struct ShutdownTests {
    @Test("a send that fails mid-transfer ends the connection with pins, references and registrations released",
          arguments: [SoftVerbsFault.completion(nth: 40, status: .retryExceededError), .post(nth: 40)])
    func errorMidTransfer(fault: SoftVerbsFault) throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device, initiator: SMBDirectConfiguration(maxSendSize: 1024))
        let ledger = PinLedger(mode: .exact)
        let payload = randomBytes(1 << 20, seed: 11)
        device.inject(fault)
        #expect(throws: SMBDirectError.self) { try send([], payload: payload, on: loop.initiator, ledger: ledger) }
        guard case .failed = loop.initiator.state else {
            Issue.record("the connection did not fail: \(loop.initiator.state)")
            return
        }
        #expect(ledger.isEmpty, "the UBUF payload's pins were released")
        #expect(loop.initiator.sendRegistrations.referenceCount == 0)
        #expect(loop.initiator.sendRegistrations.regionCount == 0)
        #expect(loop.initiator.queuePair.state == .error || loop.initiator.queuePair.state == .reset)
        try loop.responder.close()
        #expect(device.registeredRegionCount == 0, "every buffer of both sides was deregistered")
    }

    @Test("an SMB2 write through the RDMA channel that fails mid-transfer releases its registrations")
    func channelFailure() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let device = SoftVerbs()
        let smb = try SMB2Loopback(device: device, root: directory.path)
        try connectShare(smb)
        let file = try smb.client.create("big")
        let payload = randomBytes(8 << 20, seed: 5)
        device.inject(.completion(nth: 10, status: .remoteAccessError))
        #expect(throws: SMB2Error.self) {
            try IOIterator.withSource(payload) { iterator in try smb.client.write(&iterator, to: file) }
        }
        let connection = smb.client.connection
        #expect(connection.peerReadableRegistrations.regionCount == 0, "the rkeys given to the server were invalidated")
        #expect(connection.sendRegistrations.referenceCount == 0)
        #expect(connection.hasFailed)
    }

    @Test("an orderly close flushes the receives and releases every buffer")
    func orderlyClose() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device)
        try send([1, 2], payload: randomBytes(50_000, seed: 1), on: loop.initiator)
        _ = try loop.responder.receiveMessage()
        #expect(device.registeredRegionCount > 0)
        try loop.close()
        #expect(loop.initiator.state == .closed && loop.responder.state == .closed)
        #expect(device.registeredRegionCount == 0)
        #expect(throws: SMBDirectError.notConnected) { try loop.initiator.send([1]) }
    }
}
