import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import SMBDirectSend
import Testing
import SoftVerbs

/// Caller arguments no SMB2 request can carry, and peers that send what they should
/// not: each is a typed error (or, on the server's side, an error status), never a trap.
@Suite("SMB2 bad input")
struct SMB2BadInputTests {
    /// A client and the in-process server, negotiated, with a session, a tree and an open file.
    final class Session {
        let directory = TemporaryDirectory()
        let smb: SMB2Loopback<SoftVerbs>
        let file: SMB2FileID

        init() throws {
            smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path)
            try connectShare(smb)
            file = try smb.client.create("file")
        }

        var client: SMB2Client<SoftProtectionDomain> { smb.client }
        var server: SMB2Server<SoftProtectionDomain> { smb.server }
        var messagesSent: Int { smb.client.connection.statistics.messagesSent }

        /// Writes `bytes` at `offset`.
        func write(_ bytes: [UInt8], at offset: UInt64) throws {
            _ = try IOIterator.withSource(bytes) { iterator in try client.write(&iterator, to: file, at: offset) }
        }

        deinit {
            try? smb.close()
            directory.remove()
        }
    }

    // MARK: The server

    @Test("a WRITE past the largest file offset is answered with STATUS_INVALID_PARAMETER, and the server goes on",
          arguments: [(UInt64(1) << 63, 10), (UInt64(Int64.max) - 4, 10), (UInt64(1) << 63, 8192), (UInt64.max - 10, 10)])
    func writePastLargestOffset(offset: UInt64, length: Int) throws {
        let session = try Session()
        #expect(throws: SMB2Error.status(.invalidParameter, command: .write)) {
            try session.write(randomBytes(length, seed: 1), at: offset)
        }
        #expect(session.server.failure == nil)
        #expect(session.server.statistics.rdmaReadBytes == 0, "nothing was pulled for a write the server refuses")
        try session.write([1, 2, 3], at: 0)
        #expect(session.server.statistics.bytesWritten == 3)
    }

    @Test("the server holds at most maxOpenFiles open files")
    func openFilesBounded() throws {
        let session = try Session()
        let limit = SMB2Server<SoftProtectionDomain>.defaultMaxOpenFiles
        var files = [session.file]
        for index in 1..<limit { files.append(try session.client.create("file-\(index)")) }
        #expect(throws: SMB2Error.status(.tooManyOpenedFiles, command: .create)) { _ = try session.client.create("one-more") }
        #expect(session.directory.read("one-more") == nil, "a refused create makes no file")
        try session.client.close(files.removeLast())
        _ = try session.client.create("one-more")
    }

    @Test("a file name with a NUL character is refused, not cut short")
    func nameWithNUL() throws {
        let session = try Session()
        #expect(throws: SMB2Error.status(.objectNameInvalid, command: .create)) { _ = try session.client.create("cut\0short") }
        #expect(session.directory.read("cut") == nil)
    }

    // MARK: The client's arguments

    /// Whether `error` is ``SMB2Error/invalidArgument(_:)``.
    func isInvalidArgument(_ error: any Error) -> Bool {
        guard case SMB2Error.invalidArgument = error else { return false }
        return true
    }

    @Test("a share path or a file name longer than 32,767 UTF-16 units is refused before anything is sent")
    func namesTooLong() throws {
        let session = try Session()
        let sent = session.messagesSent
        let longest = String(repeating: "a", count: 32_767)
        let tooLong = String(repeating: "\u{1F600}", count: 16_384)
        #expect(performing: { try session.client.connectTree(tooLong) }, throws: isInvalidArgument)
        #expect(performing: { _ = try session.client.create(longest + "b") }, throws: isInvalidArgument)
        #expect(session.messagesSent == sent, "nothing was sent")
        #expect(throws: SMB2Error.status(.badNetworkName, command: .treeConnect)) { try session.client.connectTree(longest) }
        #expect(throws: SMB2Error.status(.accessDenied, command: .create)) { _ = try session.client.create(longest) }
    }

    @Test("data that starts at a hole is refused with a typed error, inline or through the RDMA channel, not sent as an empty WRITE forever",
          .timeLimit(.minutes(1)), arguments: [100, 8192])
    func holeInData(length: Int) throws {
        let session = try Session()
        let pool = try PagePool(pageCount: 8)
        let cache = PageCache()
        try cache.insert(try pool.allocateFolio(order: 0), at: 1)
        // Index 0 is a hole: nothing describes the first page's bytes.
        var data = try IOIterator(pageCache: cache, position: pageSize - length / 2, count: length, direction: .source)
        let sent = session.messagesSent
        #expect(performing: { try session.client.write(&data, to: session.file) }, throws: isInvalidArgument)
        #expect(session.messagesSent == sent, "nothing was sent")
        #expect(data.count == length, "the data did not advance")
        #expect(session.server.statistics.bytesWritten == 0)
        try session.write([1, 2, 3], at: 0)
        #expect(session.server.statistics.bytesWritten == 3, "the client goes on")
    }

    @Test("an inline threshold above what one message can carry still writes, through the RDMA channel past the largest inline WRITE")
    func inlineThresholdClamped() throws {
        let session = try Session()
        session.client.inlineThreshold = .max
        let limit = try #require(session.client.connection.limits).maxFragmentedSendSize
        let bytes = randomBytes(limit + 4096, seed: 3)
        try session.write(bytes, at: 0)
        #expect(session.directory.read("file") == bytes)
        #expect(session.client.statistics.rdmaWrites >= 1, "what does not fit one message went through the channel")
    }

    @Test("more buffer descriptors than a WRITE's channel information holds are refused before anything is sent")
    func tooManyDescriptors() throws {
        let session = try Session()
        session.client.maxDescriptors = 4096
        // 4,096 two-byte pieces a page apart: one descriptor each.
        let pages = 4096
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: pages * 4096, alignment: 4096)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 7)
        let pieces = UnsafeMutableBufferPointer<iovec>.allocate(capacity: pages)
        defer { pieces.deallocate() }
        for index in 0..<pages { pieces[index] = iovec(iov_base: memory.baseAddress! + index * 4096, iov_len: 2) }
        var data = try IOIterator(iovecs: UnsafeBufferPointer(pieces), direction: .source)
        let sent = session.messagesSent
        #expect(performing: { try session.client.write(&data, to: session.file) }, throws: isInvalidArgument)
        #expect(session.messagesSent == sent, "nothing was sent")
        #expect(data.count == 2 * pages, "the data did not advance")
        #expect(session.client.connection.peerReadableRegistrations.regionCount == 0, "nothing was registered")
        session.client.maxDescriptors = 4095
        try session.client.write(&data, to: session.file)
        #expect(session.server.statistics.bytesWritten == 2 * pages)
    }

    @Test("a write whose range ends past UInt64.max is refused before anything is sent, and the data does not advance")
    func writeRangeOverflow() throws {
        let session = try Session()
        let sent = session.messagesSent
        IOIterator.withSource(randomBytes(200_000, seed: 2)) { iterator in
            #expect(performing: { try session.client.write(&iterator, to: session.file, at: UInt64.max - 100_000) },
                    throws: isInvalidArgument)
            #expect(iterator.count == 200_000)
        }
        #expect(session.messagesSent == sent, "nothing was sent")
    }

    @Test("smbdirect-send's target must name a host, a share and a path",
          arguments: ["", "host/share/path", "//host", "//host/share", "//host/share/", "///share/path", "//host//path"])
    func malformedTargets(text: String) {
        #expect(SMBDirectSendTarget(parsing: text) == nil)
    }

    // MARK: A server that claims too much

    /// A client (up to `depth` WRITEs in flight, its pins counted in `ledger`) whose
    /// server answers every request with the messages `answer` builds from the
    /// request's header and its bytes.
    final class ScriptedServer {
        let transport: SMBDirectLoopback<SoftVerbs>
        let client: SMB2Client<SoftProtectionDomain>

        init(depth: Int = SMB2Client<SoftProtectionDomain>.defaultDepth, ledger: PinLedger = .shared,
             answers: @escaping (SMB2Header, [UInt8]) -> [[UInt8]]) throws {
            transport = try SMBDirectLoopback(device: SoftVerbs())
            client = SMB2Client(connection: transport.initiator, depth: depth, ledger: ledger)
            transport.initiator.idleHandler = { [responder = transport.responder] in
                try? responder.progress()
                while let request = try? responder.nextMessage(), let header = try? SMB2Header(decoding: request) {
                    for message in answers(header, request) { try? responder.send(message) }
                }
            }
        }

        /// A client whose server answers every request with the one message `answer` builds.
        convenience init(answer: @escaping (SMB2Header, [UInt8]) -> [UInt8]) throws {
            try self.init { header, request in [answer(header, request)] }
        }

        /// The header of a successful response to `header`.
        static func responseHeader(to header: SMB2Header) -> SMB2Header {
            SMB2Header(command: header.command, creditCharge: header.creditCharge, credits: 16, messageID: header.messageID,
                       status: .success, flags: SMB2Header.responseFlag, treeID: header.treeID, sessionID: header.sessionID)
        }
    }

    @Test("a WRITE response counting more bytes than the request carried is a protocol error", arguments: [100, 8192])
    func overlongWriteCount(length: Int) throws {
        let server = try ScriptedServer { header, request in
            let written = SMB2Header.writeRequestLengthForTesting(request, maxTransferSize: 1 << 20) ?? 0
            return ScriptedServer.responseHeader(to: header).writeResponseForTesting(count: written + 1)
        }
        let file = SMB2FileID(persistent: 1, volatile: 1)
        _ = IOIterator.withSource(randomBytes(length, seed: 3)) { iterator in
            #expect {
                try server.client.write(&iterator, to: file)
            } throws: { error in
                guard case SMB2Error.unexpectedResponse = error else { return false }
                return true
            }
        }
        try server.transport.close()
    }
}
