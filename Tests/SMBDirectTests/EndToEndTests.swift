import IterExtract
import RDMASGE
import SMBDirect
import SMBDirectSend
import Testing
import SoftVerbs

/// SMB2 over SMB Direct over SoftVerbs, to the in-process server, byte-exact.
@Suite("SMB2 over SMB Direct, end to end")
struct EndToEndTests {
    @Test("a 32 MiB file goes through the RDMA channel and arrives byte-exact")
    func largeFileThroughChannel() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let bytes = randomBytes(32 << 20, seed: 32)
        let file = directory.write(bytes, to: "source")
        let report = try SMBDirectSend.runInProcess(
            file: file, target: SMBDirectSendTarget(host: "localhost", share: "share", path: "copy"), serverRoot: directory.path)
        #expect(directory.read("copy") == bytes)
        #expect(report.client.rdmaWrites == 32)
        #expect(report.client.inlineWrites == 0)
        #expect(report.serverRDMAReadBytes == 32 << 20)
        #expect(report.transport.payloadBytesSent < 1 << 16, "only requests went through sends")
        #expect(report.leftovers.registeredRegions == 0 && report.description.contains("left behind:  "))
        print(report)
    }

    @Test("a small file goes inline, extracted straight into the sends, and arrives byte-exact")
    func smallFileInline() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let bytes = randomBytes(3000, seed: 3)
        let file = directory.write(bytes, to: "small")
        let report = try SMBDirectSend.runInProcess(
            file: file, target: SMBDirectSendTarget(host: "h", share: "share", path: "small-copy"), serverRoot: directory.path)
        #expect(directory.read("small-copy") == bytes)
        #expect(report.client.inlineWrites == 1)
        #expect(report.client.rdmaWrites == 0)
        #expect(report.serverRDMAReadBytes == 0)
        #expect(report.transport.payloadSGEsSent >= 3, "3000 bytes from the page cache in 1340-byte messages")
    }

    @Test("the in-process server refuses a wrong share and names outside its root")
    func refusals() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path)
        try smb.client.negotiate()
        try smb.client.setUpAnonymousSession()
        #expect(smb.client.sessionFlags & 0x2 != 0, "an anonymous session is a null session")
        #expect(throws: SMB2Error.status(.badNetworkName, command: .treeConnect)) { try smb.client.connectTree("\\\\h\\other") }
        try smb.client.connectTree("\\\\h\\share")
        #expect(throws: SMB2Error.status(.objectNameInvalid, command: .create)) { _ = try smb.client.create("..\\escape") }
        try smb.close()
    }

    @Test("memory registered for a read is written by the peer's RDMA WRITE, then invalidated")
    func rdmaWriteIntoRegistration() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs())
        var target = [UInt8](repeating: 0, count: 100_000)
        let source = randomBytes(100_000, seed: 9)
        let sourceBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 4096)
        defer { sourceBuffer.deallocate() }
        sourceBuffer.copyMemory(from: source.withUnsafeBytes { $0 })
        let region = try loop.responderDomain.registerMemory(sourceBuffer, access: [])
        try IOIterator.withDestination(&target) { iterator in
            let registration = try loop.initiator.register(&iterator, maxSize: 1 << 20)
            #expect(registration.byteCount == 100_000)
            try loop.responder.write(UnsafeRawBufferPointer(sourceBuffer), lkey: region.lkey, to: registration.descriptors)
            loop.initiator.release(registration)
        }
        #expect(target == source)
        #expect(loop.initiator.peerWritableRegistrations.regionCount == 0)
        #expect(loop.responder.statistics.rdmaWriteBytes == 100_000)
        try region.deregister()
        try loop.close()
    }

    @Test("targets parse from //host/share/path")
    func targets() {
        let target = SMBDirectSendTarget(parsing: "//server/data/dir/file.bin")
        #expect(target == SMBDirectSendTarget(host: "server", share: "data", path: "dir/file.bin"))
        #expect(target?.uncShare == "\\\\server\\data")
        #expect(target?.smbPath == "dir\\file.bin")
        #expect(SMBDirectSendTarget(parsing: "//server/data") == nil)
        #expect(SMBDirectSendTarget(parsing: "server/data/file") == nil)
    }
}

@Suite("smbdirect-send over librdmacm")
struct SMBDirectSendConnectionTests {
    @Test("the connection to a server allows no receiver-not-ready retries, so a credit bug fails at once instead of stalling")
    func noRNRRetries() throws {
        let parameters = SMBDirectSend.connectionParameters(readsInFlight: 16)
        #expect(parameters.receiverNotReadyRetryCount == 0)
        #expect(parameters.responderResources == 16 && parameters.initiatorDepth == 16)
        try parameters.validate(for: .connect, privateDataLimit: ConnectionParameters.maxRequestPrivateData)
    }
}
