import IterExtract
import RDMASGE
import SMBDirect
import SMBDirectSend
import SoftVerbs
import Testing

/// SMB2 READ (issue 19): through the RDMA channel into registered, pinned destination
/// memory, or inline; pipelined, in any order, after interim responses; the end of
/// the file; and a server that claims more than was asked.
@Suite("SMB2 reads")
struct ReadTests {
    /// What a read through the in-process server left behind.
    struct Run {
        let bytes: [UInt8]
        let read: Int
        /// The destination's bytes left after the read.
        let left: Int
        let statistics: SMB2Client<SoftProtectionDomain>.Statistics
        /// The pages pinned whenever the server answered with requests in flight.
        let pinnedWhileServing: [Int]
    }

    /// Puts `file` in the server's directory, then reads it from `offset` into a
    /// `capacity`-byte page-aligned user buffer (a UBUF destination) with up to `depth`
    /// READs in flight; checks that nothing stays pinned, registered or in flight afterwards.
    func run(_ file: [UInt8], capacity: Int, offset: UInt64 = 0, depth: Int = 4, inlineThreshold: Int = 4096,
             scheduling: SMB2WriteScheduling = .immediate) throws -> Run {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        _ = directory.write(file, to: "source")
        let ledger = PinLedger(mode: .exact)
        let smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path, inlineThreshold: inlineThreshold, depth: depth,
                                   ledger: ledger)
        try connectShare(smb)
        smb.server.writeScheduling = scheduling
        let (handle, size) = try smb.client.open("source")
        #expect(size == UInt64(file.count))
        var pinnedWhileServing: [Int] = []
        let serve = smb.transport.initiator.idleHandler
        smb.transport.initiator.idleHandler = {
            pinnedWhileServing.append(ledger.pinnedPageCount)
            serve?()
        }
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: pageSize)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0xEE)
        var destination = try IOIterator(ubufAt: UInt(bitPattern: memory.baseAddress), count: capacity, direction: .destination)
        var progress: [Int] = []
        let read = try smb.client.read(from: handle, at: offset, into: &destination) { progress.append($0) }
        #expect(progress == progress.sorted() && (progress.last ?? 0) >= read)
        try smb.client.close(handle)
        #expect(ledger.isEmpty, "\(ledger.pinnedPageCount) pages still pinned")
        #expect(smb.client.connection.peerWritableRegistrations.regionCount == 0, "the registrations were released")
        #expect(smb.server.failure == nil)
        try smb.close()
        return Run(bytes: Array(memory[..<read]), read: read, left: destination.count, statistics: smb.client.statistics,
                   pinnedWhileServing: pinnedWhileServing)
    }

    @Test("a file read through the RDMA channel into pinned user memory arrives byte-exact", arguments: [1, 4])
    func throughChannel(depth: Int) throws {
        let file = randomBytes(3 << 20 + 12_345, seed: 19)
        let run = try run(file, capacity: file.count, depth: depth)
        #expect(run.read == file.count && run.bytes == file)
        #expect(run.left == 0)
        #expect(run.statistics.rdmaReads == 4 && run.statistics.inlineReads == 0)
        #expect(run.statistics.readBufferDescriptors >= 4)
        #expect(run.statistics.maxRequestsInFlight == depth)
        #expect(run.pinnedWhileServing.contains { $0 > 0 }, "the destination's pages were pinned while the server wrote them")
    }

    @Test("a small read comes inline, copied from the response into the destination")
    func inline() throws {
        let file = randomBytes(20_000, seed: 20)
        let run = try run(file, capacity: file.count, inlineThreshold: 1 << 16)
        #expect(run.bytes == file)
        #expect(run.statistics.inlineReads == 1 && run.statistics.inlineReadBytes == file.count)
        #expect(run.statistics.rdmaReads == 0)
        #expect(run.pinnedWhileServing.allSatisfy { $0 == 0 }, "an inline read pins nothing")
    }

    @Test("READs answered last first, or after an interim STATUS_PENDING response, still land in place",
          arguments: [(false, true), (true, false), (true, true)])
    func scheduled(interim: Bool, reversed: Bool) throws {
        let file = randomBytes(5 << 20, seed: 5)
        let run = try run(file, capacity: file.count, scheduling: SMB2WriteScheduling(interimResponses: interim, reversed: reversed))
        #expect(run.bytes == file)
        #expect(run.statistics.interimResponses == (interim ? 5 : 0))
        #expect((run.statistics.outOfOrderResponses > 0) == reversed)
        #expect(run.statistics.maxRequestsInFlight == 4)
    }

    @Test("a read past the end of the file stops there: the bytes before it, the destination just past them",
          arguments: [4096, 1 << 20])
    func endOfFile(inlineThreshold: Int) throws {
        let file = randomBytes(2 << 20 + 500, seed: 7)
        let run = try run(file, capacity: 4 << 20, inlineThreshold: inlineThreshold)
        #expect(run.read == file.count && run.bytes == file)
        #expect(run.left == 4 << 20 - file.count)
    }

    @Test("a read at the end of the file reads nothing (STATUS_END_OF_FILE)")
    func atEndOfFile() throws {
        let file = randomBytes(10_000, seed: 8)
        let run = try run(file, capacity: 8192, offset: 10_000)
        #expect(run.read == 0 && run.left == 8192)
    }

    @Test("a read from an offset in the middle returns the rest of the file")
    func fromOffset() throws {
        let file = randomBytes(1 << 20, seed: 9)
        let run = try run(file, capacity: 1 << 20, offset: 300_000)
        #expect(run.read == file.count - 300_000 && run.bytes == Array(file[300_000...]))
    }

    @Test("smbdirect-send --read without a server reads the served file into a local one, byte-exact, and reports it")
    func exampleInProcess() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let bytes = randomBytes(9 << 20 + 777, seed: 45)
        _ = directory.write(bytes, to: "source")
        let local = directory.path + "/local"
        let report = try SMBDirectSend.runInProcessRead(
            file: local, target: SMBDirectSendTarget(host: "localhost", share: "share", path: "source"), serverRoot: directory.path,
            depth: 3, scheduling: SMB2WriteScheduling(reversed: true))
        #expect(directory.read("local") == bytes)
        #expect(report.bytes == bytes.count && report.isRead)
        // 9 MiB through the RDMA channel, the last 777 bytes inline.
        #expect(report.client.maxRequestsInFlight == 3 && report.client.rdmaReads == 9 && report.client.inlineReads == 1)
        #expect(report.serverRDMAWriteBytes == 9 << 20)
        #expect(report.description.contains("bytes from //localhost/share/source"))
        #expect(report.description.contains("reads:        1 inline (777 bytes), 9 through the RDMA channel (\(9 << 20) bytes"))
        // The pins are counted in the process-wide ledger, which tests running in parallel share.
        #expect(report.leftovers.registeredRegions == 0 && report.description.contains("left behind:  "))
    }

    // MARK: A server that answers what was not asked

    /// Reads 256 KiB (four READs of 64 KiB through the RDMA channel, or one inline
    /// read when `inline`) from a server that answers each READ with `answer`,
    /// expects `expected`, and checks that the session ended, nothing stays pinned or
    /// registered, and the destination is where it was.
    func expectSessionEnds(inline: Bool = false, answer: @escaping (SMB2Header, _ length: Int) -> [UInt8],
                           _ expected: @escaping (SMB2Error) -> Bool) throws {
        let ledger = PinLedger(mode: .exact)
        let server = try SMB2BadInputTests.ScriptedServer(depth: 4, ledger: ledger) { header, request in
            let length = SMB2Header.readRequestForTesting(request, maxTransferSize: 1 << 20)?.length ?? 0
            return [answer(SMB2BadInputTests.ScriptedServer.responseHeader(to: header), length)]
        }
        let capacity = inline ? 1000 : 256 << 10
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: pageSize)
        defer { memory.deallocate() }
        var destination = try IOIterator(ubufAt: UInt(bitPattern: memory.baseAddress), count: capacity, direction: .destination)
        #expect {
            try server.client.read(from: SMB2FileID(persistent: 1, volatile: 1), into: &destination)
        } throws: { error in
            (error as? SMB2Error).map(expected) ?? false
        }
        #expect(destination.count == capacity, "the destination is where it was")
        #expect(server.client.connection.hasFailed, "the session ended")
        #expect(ledger.isEmpty)
        #expect(server.client.connection.peerWritableRegistrations.regionCount == 0)
        server.transport.responder.disconnect()
    }

    static func isUnexpected(_ error: SMB2Error) -> Bool {
        if case .unexpectedResponse = error { true } else { false }
    }

    @Test("DataRemaining past the registered memory ends the session with a typed error")
    func dataRemainingPastRegistration() throws {
        try expectSessionEnds(answer: { header, length in
            header.readResponseForTesting(dataLength: 0, dataRemaining: length + 1)
        }, Self.isUnexpected)
    }

    @Test("inline data in answer to an RDMA-channel READ ends the session with a typed error")
    func inlineDataForChannelRead() throws {
        try expectSessionEnds(answer: { header, _ in
            header.readResponseForTesting(dataLength: 10, dataRemaining: 0, data: Array(repeating: 1, count: 10))
        }, Self.isUnexpected)
    }

    @Test("an inline DataLength past what was asked ends the session with a typed error")
    func inlineDataLengthPastRequest() throws {
        try expectSessionEnds(inline: true, answer: { header, length in
            header.readResponseForTesting(dataLength: length + 1, dataRemaining: 0, data: Array(repeating: 1, count: length + 1))
        }, Self.isUnexpected)
    }

    @Test("DataOffset and DataLength outside the response end the session with a typed error",
          arguments: [(UInt8(200), 100), (UInt8(10), 100), (UInt8(80), 5000)])
    func dataOutsideMessage(offset: UInt8, length: Int) throws {
        try expectSessionEnds(inline: true, answer: { header, _ in
            header.readResponseForTesting(dataOffset: offset, dataLength: length, dataRemaining: 0,
                                          data: Array(repeating: 1, count: 100))
        }, { error in
            if case .malformed = error { true } else { false }
        })
    }

    @Test("an error status for one READ is thrown after the others in flight are answered, and the session goes on")
    func errorStatusDrains() throws {
        let ledger = PinLedger(mode: .exact)
        var answered = 0
        let server = try SMB2BadInputTests.ScriptedServer(depth: 4, ledger: ledger) { header, request in
            answered += 1
            let length = SMB2Header.readRequestForTesting(request, maxTransferSize: 1 << 20)?.length ?? 0
            var response = SMB2BadInputTests.ScriptedServer.responseHeader(to: header)
            if answered == 2 { response.status = .accessDenied }
            return [response.readResponseForTesting(dataLength: 0, dataRemaining: length)]
        }
        var bytes = [UInt8](repeating: 0, count: 256 << 10)
        _ = IOIterator.withDestination(&bytes) { destination in
            #expect(throws: SMB2Error.status(.accessDenied, command: .read)) {
                try server.client.read(from: SMB2FileID(persistent: 1, volatile: 1), into: &destination)
            }
        }
        #expect(answered == 4, "every READ in flight was answered")
        #expect(!server.client.connection.hasFailed)
        #expect(ledger.isEmpty)
        #expect(server.client.connection.peerWritableRegistrations.regionCount == 0)
        try server.transport.close()
    }
}
