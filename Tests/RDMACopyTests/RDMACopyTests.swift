import Glibc
import IterExtract
import RDMACopy
import RDMASGE
import SoftVerbs
import TestKit
import Testing

// Each test listens on an address of its own (127.0.7.N): the SoftVerbs address space
// is the process's, shared by tests running in parallel.

/// A SoftVerbs device and domain with a copy server serving on a thread of its own.
final class CopyRig: @unchecked Sendable {
    let device = SoftVerbs()
    let domain: SoftProtectionDomain
    let host: String
    let port: UInt16 = 7472
    private let thread: JoinableThread
    private let box: ResultBox

    /// Starts a server on `host` that serves `sessions` sessions with `configuration`.
    init(host: String, sessions: Int = 1, configuration: CopyServer<SoftListener, SoftProtectionDomain>.Configuration) throws {
        self.host = host
        domain = try device.allocateProtectionDomain()
        let server = CopyServer(listener: try SoftListener(device: device, host: host, port: port), domain: domain,
                                configuration: configuration)
        let box = ResultBox()
        self.box = box
        thread = JoinableThread {
            _ = server.serve(sessions: sessions, deadline: .now.advanced(by: .seconds(30))) { box.append($0) }
        }
    }

    /// A client of the rig's domain with a cache and a ledger of its own.
    func client(tuning: CopyTuning = CopyRig.tuning, maxSize: Int = 1 << 30) -> CopyClient<SoftConnection, SoftProtectionDomain> {
        CopyClient(cache: MRCache(domain: domain, access: .localWrite), ledger: PinLedger(mode: .exact), tuning: tuning, maxSize: maxSize)
    }

    /// Waits for the server to finish; what each session came to.
    func finish() -> [Result<CopyServer<SoftListener, SoftProtectionDomain>.Session, RDMACopyError>] {
        thread.join()
        return box.results
    }

    /// Small plans, so that a megabyte takes several, more than the window holds.
    static let tuning = CopyTuning(segmentSize: 64 << 10, chunkSize: 256 << 10, messageSize: 32 << 10, window: 3,
                                   timeout: .seconds(10))

    /// A buffer of `count` bytes, `byte(i)` = a pattern.
    static func buffer(count: Int, seed: UInt8 = 7) throws -> CopyBuffer {
        let buffer = try CopyBuffer(count: count)
        for index in 0..<count { buffer.bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ Int(seed) &+ index >> 12) }
        return buffer
    }
}

/// What a server hook saw.
final class Probe: @unchecked Sendable {
    var device: SoftVerbs?
    var cache: MRCache<SoftProtectionDomain>?
    var regionsAtVerification: Int?
}

/// What the server thread logged, read after it was joined.
final class ResultBox: @unchecked Sendable {
    var results: [Result<CopyServer<SoftListener, SoftProtectionDomain>.Session, RDMACopyError>] = []
    func append(_ result: Result<CopyServer<SoftListener, SoftProtectionDomain>.Session, RDMACopyError>) { results.append(result) }
}

@Suite struct RDMACopyTests {
    @Test func pushArrivesByteExactAndVerified() throws {
        let output = "/tmp/rdma-copy-test-\(getpid())-push"
        defer { unlink(output) }
        let probe = Probe()
        let rig = try CopyRig(host: "127.0.7.1", configuration: .init(outputPath: output, willVerify: { _ in
            probe.regionsAtVerification = probe.device!.registeredRegionCount - probe.cache!.regionCount
        }))
        let source = try CopyRig.buffer(count: (1 << 20) + 4097)
        let client = rig.client()
        probe.device = rig.device
        probe.cache = client.cache
        var progress: [Int] = []
        let report = try client.push(source, to: rig.host, port: rig.port) { done, total in
            #expect(total == source.bytes.count)
            progress.append(done)
        }
        let sessions = rig.finish()
        #expect(report.operation == .push && report.bytes == source.bytes.count)
        #expect(progress.count == 5 && progress.last == source.bytes.count, "\(progress): 1 MiB + 4097 bytes in plans of 256 KiB")
        let session = try #require(try sessions.first?.get())
        #expect(session.outcome == .pushed(bytes: source.bytes.count, status: .verified))
        let copy = try CopyBuffer(contentsOf: output, maxSize: 1 << 30)
        #expect(copy.bytes.elementsEqual(source.bytes))
        // Nothing is left referenced, pinned or registered: the server's exposed buffer
        // is deregistered, the client forgot its memory.
        #expect(client.cache.referenceCount == 0 && client.cache.regionCount == 0)
        #expect(client.ledger.isEmpty)
        #expect(rig.device.registeredRegionCount == 0)
        #expect(probe.regionsAtVerification == 2,
                "besides the client's cache only the two message-slot regions: the exposed buffer's rkey is gone before it is checked")
    }

    @Test func fetchReadsTheServersFileIntoADestinationIterator() throws {
        let file = try CopyRig.buffer(count: 3 * (1 << 20) / 2 + 17, seed: 99)
        let rig = try CopyRig(host: "127.0.7.2", configuration: .init(file: file))
        let client = rig.client()
        let (copy, report) = try client.fetch(from: rig.host, port: rig.port)
        let sessions = rig.finish()
        #expect(copy.bytes.elementsEqual(file.bytes))
        #expect(report.operation == .fetch && report.bytes == file.bytes.count)
        #expect(try sessions.first?.get().outcome == .fetched(bytes: file.bytes.count))
        #expect(client.cache.referenceCount == 0 && client.cache.regionCount == 0)
        #expect(client.ledger.isEmpty)
        #expect(rig.device.registeredRegionCount == 0)
    }

    @Test func oversizedPushIsRejectedWithTheServersLimit() throws {
        let rig = try CopyRig(host: "127.0.7.3", configuration: .init(maxSize: 8192))
        let client = rig.client()
        #expect(throws: RDMACopyError.rejected(CopyRejection(.tooLarge, limit: 8192))) {
            try client.push(try CopyRig.buffer(count: 8193), to: rig.host, port: rig.port)
        }
        #expect(try rig.finish().first?.get().outcome == .rejected(CopyRejection(.tooLarge, limit: 8192)))
        #expect(client.ledger.isEmpty && rig.device.registeredRegionCount == 0)
    }

    @Test func requestWithBadMagicIsRejected() throws {
        let rig = try CopyRig(host: "127.0.7.4", configuration: .init())
        let queue = try rig.domain.createCompletionQueue(capacity: 4)
        let pair = try rig.domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue,
                                                  capabilities: QueuePairCapabilities(maxSendWorkRequests: 1, maxReceiveWorkRequests: 1,
                                                                                      maxSendSGEs: 1, maxReceiveSGEs: 1))
        defer { try? pair.close(); try? queue.close() }
        var hostile = CopyRequest(operation: .push, length: 4096).privateData
        hostile[0] = UInt8(ascii: "X")
        let error = #expect(throws: VerbsError.self) {
            try SoftConnection.connect(to: rig.host, port: rig.port, queuePair: pair,
                                       parameters: ConnectionParameters(privateData: hostile), timeout: .seconds(10))
        }
        guard case .rejected(let data)? = error?.connectionEvent else {
            Issue.record("no rejection: \(String(describing: error))")
            return
        }
        #expect(try CopyRejection(parsing: data) == CopyRejection(.badMagic))
        #expect(try rig.finish().first?.get().outcome == .rejected(CopyRejection(.badMagic)))
    }

    @Test func fetchFromAServerWithoutAFileIsRejected() throws {
        let rig = try CopyRig(host: "127.0.7.5", configuration: .init())
        #expect(throws: RDMACopyError.rejected(CopyRejection(.nothingToFetch))) {
            _ = try rig.client().fetch(from: rig.host, port: rig.port)
        }
        _ = rig.finish()
    }

    @Test func corruptedBytesAreReportedAsADigestMismatch() throws {
        let output = "/tmp/rdma-copy-test-\(getpid())-corrupt"
        defer { unlink(output) }
        let rig = try CopyRig(host: "127.0.7.6", configuration: .init(outputPath: output, willVerify: { bytes in bytes[1000] ^= 0x40 }))
        let client = rig.client()
        let error = #expect(throws: RDMACopyError.self) {
            try client.push(try CopyRig.buffer(count: 300_000), to: rig.host, port: rig.port)
        }
        guard case .digestMismatch? = error else {
            Issue.record("not a digest mismatch: \(String(describing: error))")
            return
        }
        #expect(try rig.finish().first?.get().outcome == .pushed(bytes: 300_000, status: .digestMismatch))
        #expect(access(output, F_OK) != 0, "a push that failed verification is not written")
        #expect(client.cache.referenceCount == 0 && client.ledger.isEmpty && rig.device.registeredRegionCount == 0)
    }

    @Test func refusedWithoutAListenerSaysSo() throws {
        let device = SoftVerbs()
        let client = CopyClient<SoftConnection, SoftProtectionDomain>(
            cache: MRCache(domain: try device.allocateProtectionDomain(), access: .localWrite))
        #expect(throws: RDMACopyError.refused(host: "127.0.7.7", port: 7472)) {
            try client.push(try CopyRig.buffer(count: 10), to: "127.0.7.7", port: 7472)
        }
    }

    @Test func theExposedRegionIsExactlyTheBufferWithOnlyTheAccessItNeeds() throws {
        let file = try CopyRig.buffer(count: 10_000)
        let rig = try CopyRig(host: "127.0.7.8", sessions: 3, configuration: .init(file: file, timeout: .seconds(5)))
        // A hostile client: a valid fetch request, then requests of its own against the offer.
        let queue = try rig.domain.createCompletionQueue(capacity: 8)
        let pair = try rig.domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue,
                                                  capabilities: QueuePairCapabilities(maxSendWorkRequests: 4, maxReceiveWorkRequests: 1,
                                                                                      maxSendSGEs: 1, maxReceiveSGEs: 1))
        let local = try CopyBuffer(count: 16384)
        let region = try rig.domain.registerMemory(address: UInt(local.address), length: 16384, access: .localWrite)
        defer { try? pair.close(); try? queue.close(); try? region.deregister() }
        // `post(opcode, length, offset)` reaches `length` bytes at `offset` from the offered address;
        // the first failure moves the hostile queue pair to the error state, so one per session.
        func session(_ body: (_ offer: CopyOffer, _ post: (SendOpcode, Int, Int64) throws -> WorkCompletionStatus) throws -> Void) throws {
            let request = CopyRequest(operation: .fetch, length: 0)
            let connection = try SoftConnection.connect(to: rig.host, port: rig.port, queuePair: pair,
                                                        parameters: ConnectionParameters(privateData: request.privateData),
                                                        timeout: .seconds(10))
            let offer = try CopyOffer(parsing: connection.peerParameters.privateData, for: request, maxSize: 1 << 20)
            try body(offer) { opcode, length, offset in
                var sge = SGE(address: local.address, length: UInt32(length), lkey: region.lkey)
                try withUnsafePointer(to: &sge) { sge in
                    try pair.postSend(SendWorkRequest(id: 1, opcode: opcode, sges: UnsafeBufferPointer(start: sge, count: 1),
                                                      flags: .signaled, remoteAddress: offer.address &+ UInt64(bitPattern: offset), rkey: offer.rkey))
                }
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while ContinuousClock.now < deadline {
                    if let completion = try queue.poll() { return completion.status }
                }
                Issue.record("no completion")
                return .success
            }
            connection.disconnect()
            try pair.modify(to: .reset, remote: nil)
        }
        try session { (offer, post) throws in
            #expect(offer.length == 10_000)
            #expect(try post(.rdmaRead, 10_000, 0) == .success)
            #expect(local.bytes.prefix(10_000).elementsEqual(file.bytes))
            #expect(try post(.rdmaRead, 10_001, 0) == .remoteAccessError, "one byte past the buffer")
        }
        try session { (_, post) throws in
            #expect(try post(.rdmaRead, 1, -1) == .remoteAccessError, "one byte before the buffer")
        }
        try session { (_, post) throws in
            #expect(try post(.rdmaWrite, 1, 0) == .remoteAccessError, "a fetch's buffer is read-only")
        }
        let sessions = rig.finish()
        // The client never said done; its disconnect flushed the server's receive, so the
        // server did not wait out its timeout.
        #expect(sessions.count == 3)
        for session in sessions {
            guard case .failure(.transferFailed(.workRequestFlushError, _)) = session else {
                Issue.record("not ended by the disconnect: \(session)")
                continue
            }
        }
        #expect(rig.device.registeredRegionCount == 1, "only the hostile client's own region is left")
    }

    @Test func aClientRetriesWhileNothingListensYet() throws {
        let device = SoftVerbs()
        let domain = try device.allocateProtectionDomain()
        let box = ResultBox()
        let late = JoinableThread(after: .milliseconds(1500)) {
            let listener = try! SoftListener(device: device, host: "127.0.7.9", port: 7472)
            _ = CopyServer(listener: listener, domain: domain).serve(sessions: 1) { box.append($0) }
        }
        let client = CopyClient<SoftConnection, SoftProtectionDomain>(
            cache: MRCache(domain: domain, access: .localWrite), tuning: CopyTuning(timeout: .seconds(10), connectRetry: .seconds(10)))
        let start = ContinuousClock.now
        let report = try client.push(try CopyRig.buffer(count: 5000), to: "127.0.7.9", port: 7472)
        late.join()
        #expect(report.bytes == 5000 && ContinuousClock.now - start >= .milliseconds(1500))
        #expect(try box.results.first?.get().outcome == .pushed(bytes: 5000, status: .verified))
    }
}
