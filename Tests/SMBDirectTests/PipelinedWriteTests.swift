import IterExtract
import RDMASGE
import SMBDirect
import SMBDirectSend
import Testing
import SoftVerbs

/// Pipelined WRITEs (issue 19): several requests in flight, each keeping its
/// registration until its own final response, matched by MessageId whatever order
/// and form (interim `STATUS_PENDING`, then final) the responses take.
@Suite("SMB2 pipelined writes")
struct PipelinedWriteTests {
    /// What a run through the in-process server left behind.
    struct Run {
        let copy: [UInt8]?
        let statistics: SMB2Client<SoftProtectionDomain>.Statistics
        /// The client's peer-readable regions whenever the server held a WRITE it had not answered.
        let regionsWhileHeld: [Int]
    }

    /// Writes `bytes` through the loopback with up to `depth` WRITEs in flight, the
    /// server answering as `scheduling` says and granting at most `maxCredits`;
    /// checks that nothing stays pinned, registered or in flight afterwards.
    func run(_ bytes: [UInt8], depth: Int, scheduling: SMB2WriteScheduling = .immediate,
             maxCredits: Int = SMB2Server<SoftProtectionDomain>.defaultMaxCredits) throws -> Run {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ledger = PinLedger(mode: .exact)
        let smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path, depth: depth, ledger: ledger)
        smb.server.maxCredits = maxCredits
        try connectShare(smb)
        smb.server.writeScheduling = scheduling
        let file = try smb.client.create("copy")
        let readable = smb.client.connection.peerReadableRegistrations
        var regionsWhileHeld: [Int] = []
        let serve = smb.transport.initiator.idleHandler
        smb.transport.initiator.idleHandler = { [server = smb.server] in
            if server.heldWriteCount > 0 { regionsWhileHeld.append(readable.regionCount) }
            serve?()
        }
        var acknowledged: [Int] = []
        let written = try IOIterator.withSource(bytes) { iterator in
            try smb.client.write(&iterator, to: file) { acknowledged.append($0) }
        }
        #expect(written == bytes.count)
        #expect(acknowledged == acknowledged.sorted() && acknowledged.last == bytes.count)
        try smb.client.close(file)
        #expect(ledger.isEmpty, "\(ledger.pinnedPageCount) pages still pinned")
        #expect(readable.regionCount == 0, "the registrations were released")
        #expect(smb.client.connection.sendRegistrations.referenceCount == 0)
        #expect(smb.server.failure == nil)
        try smb.close()
        return Run(copy: directory.read("copy"), statistics: smb.client.statistics, regionsWhileHeld: regionsWhileHeld)
    }

    @Test("several WRITEs in flight arrive byte-exact through the RDMA channel", arguments: [2, 4, 8])
    func depthThroughChannel(depth: Int) throws {
        let bytes = randomBytes(8 << 20, seed: 19)
        let run = try run(bytes, depth: depth)
        #expect(run.copy == bytes)
        #expect(run.statistics.rdmaWrites == 8)
        #expect(run.statistics.maxRequestsInFlight == depth)
        #expect(run.statistics.creditStalls == 0)
    }

    @Test("small WRITEs sent inline are pipelined too")
    func depthInline() throws {
        let bytes = randomBytes(20_000, seed: 20)
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path, inlineThreshold: 1 << 20, depth: 4)
        try connectShare(smb)
        let file = try smb.client.create("copy")
        // Writes of 1 KiB, inline, at offsets of their own.
        for start in stride(from: 0, to: bytes.count, by: 5000) {
            let piece = Array(bytes[start..<min(bytes.count, start + 5000)])
            try IOIterator.withSource(piece) { iterator in
                _ = try smb.client.write(&iterator, to: file, at: UInt64(start))
            }
        }
        try smb.client.close(file)
        try smb.close()
        #expect(directory.read("copy") == bytes)
        #expect(smb.client.statistics.inlineWrites == 4 && smb.client.statistics.rdmaWrites == 0)
    }

    @Test("depth 1 sends one WRITE at a time, as before")
    func depthOne() throws {
        let bytes = randomBytes(3 << 20 + 12_345, seed: 1)
        let run = try run(bytes, depth: 1)
        #expect(run.copy == bytes)
        #expect(run.statistics.maxRequestsInFlight == 1)
        #expect(run.statistics.outOfOrderResponses == 0)
    }

    @Test("responses that come last first are matched by MessageId", arguments: [1, 4])
    func outOfOrder(depth: Int) throws {
        let bytes = randomBytes(6 << 20 + 100, seed: 6)
        let run = try run(bytes, depth: depth, scheduling: SMB2WriteScheduling(reversed: true))
        #expect(run.copy == bytes)
        #expect(run.statistics.maxRequestsInFlight == depth)
        #expect((run.statistics.outOfOrderResponses > 0) == (depth > 1))
    }

    @Test("an interim STATUS_PENDING response keeps the request and its registration until the final response",
          arguments: [(1, false), (4, false), (4, true)])
    func interimThenFinal(depth: Int, reversed: Bool) throws {
        let bytes = randomBytes(5 << 20, seed: 5)
        let run = try run(bytes, depth: depth, scheduling: SMB2WriteScheduling(interimResponses: true, reversed: reversed))
        #expect(run.copy == bytes)
        #expect(run.statistics.interimResponses == 5, "one per WRITE")
        #expect(run.statistics.maxRequestsInFlight == depth)
        // The server pulls the data only after the client has seen the interim response.
        #expect(!run.regionsWhileHeld.isEmpty)
        #expect(run.regionsWhileHeld.allSatisfy { $0 > 0 }, "a registration was released while the server could still read it")
    }

    @Test("a server that grants few credits stalls the window, and the bytes still arrive")
    func creditStalls() throws {
        let bytes = randomBytes(4 << 20, seed: 4)
        // 1 MiB WRITEs cost 16 credits: 20 pay for one at a time.
        let run = try run(bytes, depth: 4, maxCredits: 20)
        #expect(run.copy == bytes)
        #expect(run.statistics.maxRequestsInFlight == 1)
        #expect(run.statistics.creditStalls > 0)
    }

    @Test("smbdirect-send's report shows the requests in flight")
    func report() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let bytes = randomBytes(4 << 20, seed: 44)
        let file = directory.write(bytes, to: "source")
        let report = try SMBDirectSend.runInProcess(
            file: file, target: SMBDirectSendTarget(host: "localhost", share: "share", path: "copy"), serverRoot: directory.path,
            depth: 3, scheduling: SMB2WriteScheduling(interimResponses: true, reversed: true))
        #expect(directory.read("copy") == bytes)
        #expect(report.client.maxRequestsInFlight == 3)
        #expect(report.description.contains("3 requests at most (depth 3)"))
    }

    // MARK: A server that answers what was not asked

    /// A scripted server that answers every request with `answer`'s messages, with a
    /// client keeping up to 4 WRITEs in flight and counting its pins in `ledger`.
    func scripted(_ ledger: PinLedger, answer: @escaping (SMB2Header, [UInt8]) -> [[UInt8]]) throws -> SMB2BadInputTests.ScriptedServer {
        try SMB2BadInputTests.ScriptedServer(depth: 4, ledger: ledger, answers: answer)
    }

    /// A successful WRITE response to `request`, counting all its bytes.
    static func written(_ header: SMB2Header, _ request: [UInt8], messageID: UInt64? = nil, credits: UInt16 = 16,
                        flags: UInt32 = SMB2Header.responseFlag, asyncID: UInt64 = 0, status: NTStatus = .success) -> [UInt8] {
        let count = SMB2Header.writeRequestLengthForTesting(request, maxTransferSize: 1 << 20) ?? 0
        return SMB2Header(command: header.command, creditCharge: header.creditCharge, credits: credits,
                          messageID: messageID ?? header.messageID, status: status, flags: flags, asyncID: asyncID,
                          sessionID: header.sessionID).writeResponseForTesting(count: count)
    }

    /// Writes 256 KiB (four WRITEs of 64 KiB through the RDMA channel) to `server`,
    /// expects `unexpectedResponse`, and checks that the session ended with nothing
    /// left pinned or registered.
    func expectSessionEnds(_ server: SMB2BadInputTests.ScriptedServer, _ ledger: PinLedger) throws {
        _ = IOIterator.withSource(randomBytes(256 << 10, seed: 2)) { iterator in
            #expect {
                try server.client.write(&iterator, to: SMB2FileID(persistent: 1, volatile: 1))
            } throws: { error in
                guard case SMB2Error.unexpectedResponse = error else { return false }
                return true
            }
        }
        #expect(server.client.connection.hasFailed, "the session ended")
        #expect(ledger.isEmpty)
        #expect(server.client.connection.peerReadableRegistrations.regionCount == 0)
        server.transport.responder.disconnect()
    }

    @Test("a response for a MessageId not in flight ends the session with a typed error")
    func unknownMessageID() throws {
        let ledger = PinLedger(mode: .exact)
        let server = try scripted(ledger) { header, request in [Self.written(header, request, messageID: header.messageID + 1000)] }
        try expectSessionEnds(server, ledger)
    }

    @Test("a duplicated response ends the session with a typed error")
    func duplicateResponse() throws {
        let ledger = PinLedger(mode: .exact)
        let server = try scripted(ledger) { header, request in
            let response = Self.written(header, request)
            return [response, response]
        }
        try expectSessionEnds(server, ledger)
    }

    @Test("credits granted past 65,535 end the session with a typed error")
    func creditOverflow() throws {
        let ledger = PinLedger(mode: .exact)
        let server = try scripted(ledger) { header, request in [Self.written(header, request, credits: .max)] }
        try expectSessionEnds(server, ledger)
    }

    @Test("STATUS_PENDING outside the ASYNC header form, or twice, ends the session with a typed error", arguments: [false, true])
    func malformedInterim(twice: Bool) throws {
        let ledger = PinLedger(mode: .exact)
        let async = SMB2Header.responseFlag | SMB2Header.asyncFlag
        let server = try scripted(ledger) { header, request in
            twice ? [Self.written(header, request, flags: async, asyncID: 9, status: .pending),
                     Self.written(header, request, flags: async, asyncID: 9, status: .pending)]
                  : [Self.written(header, request, status: .pending)]
        }
        try expectSessionEnds(server, ledger)
    }

    @Test("an error status for one WRITE is thrown after the others in flight are answered, and the session goes on")
    func errorStatusDrains() throws {
        let ledger = PinLedger(mode: .exact)
        var answered = 0
        let server = try scripted(ledger) { header, request in
            answered += 1
            return [Self.written(header, request, status: answered == 2 ? .diskFull : .success)]
        }
        _ = IOIterator.withSource(randomBytes(256 << 10, seed: 2)) { iterator in
            #expect(throws: SMB2Error.status(.diskFull, command: .write)) {
                try server.client.write(&iterator, to: SMB2FileID(persistent: 1, volatile: 1))
            }
        }
        #expect(answered == 4, "every WRITE in flight was answered")
        #expect(!server.client.connection.hasFailed)
        #expect(ledger.isEmpty)
        #expect(server.client.connection.peerReadableRegistrations.regionCount == 0)
        try IOIterator.withSource([1, 2, 3]) { iterator in
            _ = try server.client.write(&iterator, to: SMB2FileID(persistent: 1, volatile: 1))
        }
        try server.transport.close()
    }
}
