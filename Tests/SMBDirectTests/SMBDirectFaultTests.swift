import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import Testing
import SoftVerbs

// SMB Direct under faults (issue 8), beyond what ShutdownTests covers (a completion
// fault and a post fault mid-send; a completion fault in the SMB2 RDMA channel): a
// registration that fails mid-send, and either side's queue pair moved to the error
// state mid-transfer, for SMB Direct sends and for SMB2 writes through the RDMA
// channel. Each must end with a typed error, every work request of both sides
// accounted for, every pin, reference and registration released, and the caller's
// bytes untouched.

/// Where the fault strikes.
enum SMBDirectFault: Sendable, CustomTestStringConvertible {
    /// The Nth memory registration after the connection is up fails.
    case registration(nth: Int)
    /// The initiator's (client's) queue pair moves to error on its Nth wait.
    case initiatorQueuePairError(wait: Int)
    /// The responder's (server's) queue pair moves to error on the initiator's Nth wait.
    case responderQueuePairError(wait: Int)

    var testDescription: String {
        switch self {
        case .registration(let nth): "registration #\(nth)"
        case .initiatorQueuePairError(let wait): "initiator QP error at wait #\(wait)"
        case .responderQueuePairError(let wait): "responder QP error at wait #\(wait)"
        }
    }

    /// A clean 1 MiB send with 1 KiB messages makes 257 registrations and waits 4 times;
    /// every case checks that its fault struck.
    /// (Each queue-pair case costs seconds while the known issue below makes teardown spin.)
    static let all: [SMBDirectFault] = [
        .registration(nth: 2), .registration(nth: 128), .initiatorQueuePairError(wait: 3), .responderQueuePairError(wait: 1),
    ]

    var isQueuePairError: Bool {
        if case .registration = self { false } else { true }
    }
}

/// Counts the initiator's waits and moves a queue pair to error at the Nth.
final class WaitHook {
    var waits = 0
    var fired = false
}

/// Arms `fault` on a connected loopback: on the device, or in the initiator's idle handler
/// (which runs whenever the initiator waits, and then progresses the responder).
func arm<Device: VerbsDevice>(_ fault: SMBDirectFault, device: SoftVerbs, transport: SMBDirectLoopback<Device>,
                              initiator: SMBDirectConnection<Device.Domain>) -> WaitHook {
    let hook = WaitHook()
    switch fault {
    case .registration(let nth):
        device.inject(.registration(nth: nth))
    case .initiatorQueuePairError(let nth), .responderQueuePairError(let nth):
        let victim = if case .initiatorQueuePairError = fault { transport.initiator.queuePair } else { transport.responder.queuePair }
        let original = initiator.idleHandler
        initiator.idleHandler = { [weak victim] in
            hook.waits += 1
            if hook.waits == nth, !hook.fired {
                hook.fired = true
                try? victim?.modify(to: .error, remote: nil)
            }
            original?()
        }
    }
    return hook
}

/// The bug the in-flight checks run into (see `pollCompletionsDropsTheRestOfABatch`).
/// Checks that a connection that ended has every work request accounted for.
func expectNothingInFlight<Domain: ProtectionDomain>(_ connection: SMBDirectConnection<Domain>, _ side: String,
                                                     sourceLocation: SourceLocation = #_sourceLocation) {
    let inFlight = connection.workRequestsInFlightForTesting
    #expect(inFlight.sends == 0 && inFlight.receives == 0 && inFlight.rdma == 0,
            "\(side): \(inFlight.sends) sends, \(inFlight.receives) receives, \(inFlight.rdma) RDMA operations never completed",
            sourceLocation: sourceLocation)
}

/// Checks that a connection holds no pin, reference or registration of its send cache,
/// and no registration exposed to the peer.
func expectReleased<Domain: ProtectionDomain>(_ connection: SMBDirectConnection<Domain>, _ side: String,
                                              sourceLocation: SourceLocation = #_sourceLocation) {
    let cache = connection.sendRegistrations
    #expect(cache.referenceCount == 0 && cache.regionCount == 0,
            "\(side) send cache: \(cache.referenceCount) references, \(cache.regionCount) regions", sourceLocation: sourceLocation)
    let statistics = cache.statistics
    #expect(statistics.registrations == statistics.deregistrations, "\(side) send cache: \(statistics)",
            sourceLocation: sourceLocation)
    for (name, registrations) in [("peer-readable", connection.peerReadableRegistrations),
                                  ("peer-writable", connection.peerWritableRegistrations)] {
        #expect(registrations.regionCount == 0, "\(side) \(name): \(registrations.regionCount) regions still registered",
                sourceLocation: sourceLocation)
    }
}

@Suite("SMB Direct fault injection")
struct SMBDirectFaultTests {
    @Test("a fault mid-send ends both connections with a typed error and everything released", arguments: SMBDirectFault.all)
    func sendUnderFault(_ fault: SMBDirectFault) throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device, initiator: SMBDirectConfiguration(maxSendSize: 1024))
        let ledger = PinLedger(mode: .exact)
        let payload = randomBytes((1 << 20) - 3, seed: 8)
        let original = payload
        let hook = arm(fault, device: device, transport: loop, initiator: loop.initiator)

        var thrown: SMBDirectError?
        do {
            try send([7, 7, 7], payload: payload, on: loop.initiator, ledger: ledger)
        } catch let error as SMBDirectError {
            thrown = error
        }
        let error = try #require(thrown, "the send succeeded through \(fault)")
        if fault.isQueuePairError {
            #expect(hook.fired, "the fault never struck: \(hook.waits) waits")
            switch error {
            case .completion(let status, _): #expect(status != .success)
            case .disconnected: break
            default: Issue.record("unexpected error \(error)")
            }
        } else {
            #expect(error == .extraction(.registrationFailed(VerbsError(.registerMemory, errno: ENOMEM, ""))))
        }
        // The failure is the connection's state, it struck mid-transfer, and it sticks.
        #expect(loop.initiator.state == .failed(error))
        // At least one message went out first. How many depends on where the payload
        // starts within its page: registrations follow page boundaries, and a payload
        // that starts near a page's end needs its second registration for message 2.
        #expect(loop.initiator.statistics.messagesSent >= 1, "the fault struck before the transfer started")
        #expect(throws: error) { try loop.initiator.send([1]) }

        // The responder learns it (as from a connection manager) and ends too.
        if !loop.responder.hasFailed {
            try? loop.responder.progress()
            if !loop.responder.hasFailed { loop.responder.disconnect() }
        }
        #expect(loop.responder.hasFailed)
        #expect(ledger.isEmpty, "\(ledger.pinnedPageCount) pins of the UBUF payload remain")
        expectReleased(loop.initiator, "initiator")
        expectReleased(loop.responder, "responder")
        #expect(device.registeredRegionCount == 0, "every buffer of both sides was deregistered")
        #expect(payload == original, "the caller's payload changed")
        expectNothingInFlight(loop.initiator, "initiator")
        expectNothingInFlight(loop.responder, "responder")
    }

    @Test("an SMB2 write through the RDMA channel under a fault fails with a typed error and releases everything",
          // With 4 WRITEs in flight, 8 MiB takes two waits for responses: the faults strike in the second.
          arguments: [SMBDirectFault.registration(nth: 3), .initiatorQueuePairError(wait: 2), .responderQueuePairError(wait: 2)])
    func channelWriteUnderFault(_ fault: SMBDirectFault) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let device = SoftVerbs()
        let smb = try SMB2Loopback(device: device, root: directory.path)
        try connectShare(smb)
        let file = try smb.client.create("big")
        let payload = randomBytes(8 << 20, seed: 6)
        let original = payload
        let hook = arm(fault, device: device, transport: smb.transport, initiator: smb.client.connection)
        func write() throws(SMB2Error) -> Int {
            try IOIterator.withSource(payload) { (iterator) throws(SMB2Error) -> Int in try smb.client.write(&iterator, to: file) }
        }

        var thrown: SMB2Error?
        do { _ = try write() } catch { thrown = error }
        let error = try #require(thrown, "the write succeeded through \(fault)")
        let client = smb.client.connection
        let server = smb.server.connection
        #expect(payload == original, "the caller's payload changed")

        if fault.isQueuePairError {
            #expect(hook.fired, "the fault never struck: \(hook.waits) waits")
            guard case .transport = error else {
                Issue.record("not a transport error: \(error)")
                return
            }
            #expect(client.hasFailed)
            if !server.hasFailed {
                smb.server.serve()
                server.disconnect()
            }
            #expect(server.hasFailed)
            // What reached the file is a prefix of the payload, nothing else.
            let written = directory.read("big") ?? []
            #expect(written.count < payload.count && written == Array(payload.prefix(written.count)),
                    "the file holds \(written.count) bytes that are not a prefix of the payload")
            expectNothingInFlight(client, "client")
            expectNothingInFlight(server, "server")
        } else {
            // Registering the channel's memory failed before anything went out: the write
            // fails, the connection does not, and nothing of the attempt remains.
            #expect(error == .transport(.extraction(.registrationFailed(VerbsError(.registerMemory, errno: ENOMEM, "")))))
            #expect(client.state == .connected)
            #expect(client.peerReadableRegistrations.regionCount == 0)
            #expect(try write() == payload.count, "the connection stays usable after a refused registration")
            #expect(directory.read("big") == payload)
            try smb.close()
            expectNothingInFlight(client, "client")
            expectNothingInFlight(server, "server")
        }
        expectReleased(client, "client")
        expectReleased(server, "server")
        #expect(device.registeredRegionCount == 1, "only the server's staging buffer (deregistered with the server) remains")
    }

    @Test("a failed completion in the middle of a polled batch: the rest of the batch is accounted for")
    func pollCompletionsDropsTheRestOfABatch() throws {
        let device = SoftVerbs()
        let loop = try SMBDirectLoopback(device: device)
        // Flush the initiator's posted receives: one poll returns a batch of flushes, the first fails the connection.
        try loop.initiator.queuePair.modify(to: .error, remote: nil)
        #expect(throws: SMBDirectError.completion(.workRequestFlushError, operation: .receive)) { try loop.initiator.progress() }
        #expect(loop.initiator.hasFailed)
        #expect(device.registeredRegionCount > 0, "the responder still has its buffers")
        expectNothingInFlight(loop.initiator, "initiator")
    }
}
