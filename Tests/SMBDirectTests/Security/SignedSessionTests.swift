import IterExtract
import RDMASGE
import SMBDirect
import SoftVerbs
import Testing

/// SMB 3.1.1 sessions with a user (issue 20): NTLMv2 against the in-process server,
/// signing when either side requires it, and what a wrong password or a tampered
/// signature does.
@Suite("SMB2 signed sessions")
struct SignedSessionTests {
    static let users = ["alice": "Correct Horse 7"]
    static let alice = SMB2Credentials(user: "alice", domain: "WORKGROUP", password: "Correct Horse 7")

    /// A loopback whose server knows ``users``, its client negotiated.
    func loopback(_ directory: TemporaryDirectory, serverRequiresSigning: Bool = false, clientRequiresSigning: Bool = false,
                  users: [String: String] = users, ledger: PinLedger = .shared) throws -> SMB2Loopback<SoftVerbs> {
        let smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path, ledger: ledger, users: users,
                                   serverRequiresSigning: serverRequiresSigning, clientRequiresSigning: clientRequiresSigning)
        try smb.client.negotiate()
        return smb
    }

    /// A loopback with alice's session set up and the share connected.
    func signedSession(_ directory: TemporaryDirectory, serverRequiresSigning: Bool = false, clientRequiresSigning: Bool = false,
                       ledger: PinLedger = .shared) throws -> SMB2Loopback<SoftVerbs> {
        let smb = try loopback(directory, serverRequiresSigning: serverRequiresSigning, clientRequiresSigning: clientRequiresSigning,
                               ledger: ledger)
        try smb.client.setUpSession(Self.alice)
        try smb.client.connectTree("\\\\localhost\\share")
        return smb
    }

    /// Writes `bytes` from page-aligned user memory (a UBUF, whose pages the signing
    /// pins) to the file `name`, reads them back into another, and returns what was read.
    func writeAndReadBack(_ bytes: [UInt8], through smb: SMB2Loopback<SoftVerbs>) throws -> [UInt8] {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: pageSize)
        defer { memory.deallocate() }
        memory.copyBytes(from: bytes)
        let file = try smb.client.create("signed")
        var source = try IOIterator(ubufAt: UInt(bitPattern: memory.baseAddress), count: bytes.count, direction: .source)
        #expect(try smb.client.write(&source, to: file) == bytes.count)
        try smb.client.close(file)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        let (handle, size) = try smb.client.open("signed")
        #expect(size == UInt64(bytes.count))
        var destination = try IOIterator(ubufAt: UInt(bitPattern: memory.baseAddress), count: bytes.count,
                                         direction: .destination)
        #expect(try smb.client.read(from: handle, into: &destination) == bytes.count)
        try smb.client.close(handle)
        return Array(memory)
    }

    @Test("a user's session signs when either side requires it, and moves its data inline",
          arguments: [(true, false), (false, true), (true, true)])
    func signedTransfer(serverRequires: Bool, clientRequires: Bool) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ledger = PinLedger(mode: .exact)
        let smb = try loopback(directory, serverRequiresSigning: serverRequires, clientRequiresSigning: clientRequires,
                               ledger: ledger)
        #expect(smb.client.dialect == 0x0311)
        #expect(smb.client.serverRequiresSigning == serverRequires)
        try smb.client.setUpSession(Self.alice)
        #expect(smb.client.sessionFlags == 0)
        #expect(smb.client.signingAlgorithm == .aesCMAC)
        #expect(!smb.client.usesRDMAChannel)
        try smb.client.connectTree("\\\\localhost\\share")
        let bytes = randomBytes(3 << 20 | 12_345, seed: 20)
        #expect(try writeAndReadBack(bytes, through: smb) == bytes)
        #expect(directory.read("signed") == bytes)
        let statistics = smb.client.statistics
        #expect(statistics.rdmaWrites == 0 && statistics.rdmaReads == 0, "a signature does not cover the RDMA channel")
        #expect(statistics.inlineWrites >= 4 && statistics.inlineReads >= 4)
        #expect(smb.client.maxWriteSize < smb.client.connection.limits!.maxFragmentedSendSize)
        #expect(ledger.isEmpty, "\(ledger.pinnedPageCount) pages still pinned")
        #expect(smb.server.failure == nil)
        try smb.close()
    }

    @Test("a user's session that nobody requires to sign uses the RDMA channel, unsigned")
    func unsignedUserSession() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try loopback(directory)
        try smb.client.setUpSession(Self.alice)
        #expect(smb.client.signingAlgorithm == nil)
        #expect(smb.client.usesRDMAChannel)
        try smb.client.connectTree("\\\\localhost\\share")
        let bytes = randomBytes(1 << 20, seed: 21)
        #expect(try writeAndReadBack(bytes, through: smb) == bytes)
        #expect(smb.client.statistics.rdmaWrites > 0 && smb.client.statistics.rdmaReads > 0)
        try smb.close()
    }

    @Test("a wrong password or an unknown user is a logon failure",
          arguments: [SMB2Credentials(user: "alice", password: "correct horse 7"),
                      SMB2Credentials(user: "mallory", password: "Correct Horse 7")])
    func logonFailure(credentials: SMB2Credentials) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try loopback(directory, serverRequiresSigning: true)
        #expect(throws: SMB2Error.status(.logonFailure, command: .sessionSetup)) {
            try smb.client.setUpSession(credentials)
        }
        #expect(smb.client.signingAlgorithm == nil)
        try smb.close()
    }

    @Test("a server with users refuses an anonymous session")
    func anonymousRefused() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try loopback(directory)
        #expect(throws: SMB2Error.status(.logonFailure, command: .sessionSetup)) {
            try smb.client.setUpAnonymousSession()
        }
        try smb.close()
    }

    @Test("a client that requires signing refuses an anonymous session, which has no key")
    func anonymousCannotSign() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try loopback(directory, clientRequiresSigning: true, users: [:])
        let error = #expect(throws: SMB2Error.self) { try smb.client.setUpAnonymousSession() }
        guard case .signingUnavailable = error else {
            Issue.record("\(String(describing: error)), expected signingUnavailable")
            return
        }
        #expect(smb.client.connection.hasFailed, "the session ends")
    }

    @Test("a final SESSION_SETUP response with a wrong signature ends the session")
    func tamperedSessionSetup() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try loopback(directory, serverRequiresSigning: true)
        smb.server.corruptsSignatureOf = 2
        #expect(throws: SMB2Error.badSignature(command: .sessionSetup, messageID: 2)) {
            try smb.client.setUpSession(Self.alice)
        }
        #expect(smb.client.signingAlgorithm == nil)
        #expect(smb.client.connection.hasFailed, "the session ends")
    }

    @Test("a response with a wrong signature mid-session ends the session, nothing of it used")
    func tamperedResponse() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ledger = PinLedger(mode: .exact)
        let smb = try signedSession(directory, clientRequiresSigning: true, ledger: ledger)
        smb.server.corruptsSignatureOf = 4
        let credits = smb.client.credits
        #expect(throws: SMB2Error.badSignature(command: .create, messageID: 4)) {
            _ = try smb.client.create("file")
        }
        #expect(smb.client.credits == credits - 1, "the forged response's credits were not taken")
        #expect(smb.client.connection.hasFailed, "the session ends")
        #expect(ledger.isEmpty)
    }

    @Test("a response left unsigned mid-session ends the session like a wrong signature")
    func unsignedResponse() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try signedSession(directory, serverRequiresSigning: true)
        smb.server.leavesUnsignedResponseTo = 4
        #expect(throws: SMB2Error.badSignature(command: .create, messageID: 4)) {
            _ = try smb.client.create("file")
        }
        #expect(smb.client.connection.hasFailed, "the session ends")
    }

    @Test("interim STATUS_PENDING responses may come unsigned; the final ones are checked")
    func unsignedInterimResponses() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try signedSession(directory, clientRequiresSigning: true)
        smb.server.writeScheduling = SMB2WriteScheduling(interimResponses: true, reversed: true)
        let bytes = randomBytes(300_000, seed: 22)
        #expect(try writeAndReadBack(bytes, through: smb) == bytes)
        #expect(smb.client.statistics.interimResponses > 0)
        #expect(smb.server.failure == nil)
        try smb.close()
    }

    @Test("the server refuses a request of a signing session that is unsigned or signed with another key")
    func serverRefusesUnsignedRequests() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try signedSession(directory, serverRequiresSigning: true)
        // Every request so far cost one credit: the next message id is the count of requests.
        var messageID = UInt64(smb.client.statistics.requests)
        func close(signedWith signer: SMB2Signer?) throws -> (status: NTStatus, signed: Bool) {
            var writer = SMB2MessageWriter()
            SMB2Header(command: .close, credits: 1, messageID: messageID, treeID: smb.client.treeID,
                       sessionID: smb.client.sessionID).encode(into: &writer)
            SMB2CloseRequest(fileID: SMB2FileID(persistent: 9, volatile: 9)).encode(into: &writer)
            var request = writer.bytes
            signer?.sign(&request)
            messageID += 1
            let response = try SMB2Header(decoding: smb.server.response(to: request))
            return (response.status, response.isSigned)
        }
        let stranger = SMB2Signer(key: [UInt8](repeating: 7, count: 16), algorithm: .aesCMAC)
        #expect(try close(signedWith: nil) == (.accessDenied, true))
        #expect(try close(signedWith: stranger) == (.accessDenied, true))
        // Refused, not broken: the server goes on (the client's message ids are now behind it).
        #expect(smb.server.failure == nil)
    }
}
