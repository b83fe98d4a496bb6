#if RDMA
import Glibc
import IBVerbs
import IterExtract
import RDMASGE
import ScatterList
import TestKit

/// `rdma-e2e pair-server`: listens on `::` (IPv4 and IPv6) and serves each
/// connection on a thread of its own, as its request's private data asks: a
/// transfer of every operation for one iterator kind, an RDMA WRITE stream (which it
/// may cut off after a delay), or a rejection. A `done` request ends it; so does
/// 300 s without one.
struct PairServer {
    let report = Report()
    let domain: IBVerbsProtectionDomain

    init(deviceName: String?) throws {
        domain = try IBVerbs(name: deviceName).allocateProtectionDomain()
    }

    func run() -> Never {
        report.attempt("serving") {
            let listener = try RDMAListener(host: "::", port: PairProtocol.port)
            defer { try? listener.close() }
            Report.say("INFO: listening on [::]:\(listener.port)")
            var sessions: [JoinableThread] = []
            let deadline = ContinuousClock.now.advanced(by: .seconds(300))
            var done = false
            while !done, let request = try listener.accept(timeout: deadline - ContinuousClock.now) {
                let peer = request.peerHost
                let asked: PairRequest
                do {
                    asked = try PairRequest(privateData: request.peerParameters.privateData)
                } catch {
                    try request.reject(privateData: PairRejection.privateData("\(error)"))
                    report.check(false, "server: a request from \(peer) that is no pair request: \(error)")
                    continue
                }
                switch asked {
                case .transfer(let kind):
                    sessions.append(JoinableThread { [self] in
                        report.attempt("server: \(kind) transfer session from \(peer)") { try serveTransfer(request, kind: kind) }
                    })
                case .stream(let bytes, let milliseconds):
                    sessions.append(JoinableThread { [self] in
                        report.attempt("server: stream from \(peer)") {
                            try serveStream(request, bytes: bytes, disconnectAfter: milliseconds)
                        }
                    })
                case .echo(let iterations, let events):
                    // Alone: a latency measurement shares the vCPU with nothing else.
                    for session in sessions { session.join() }
                    sessions = []
                    report.attempt("server: echo session from \(peer)") { try serveEcho(request, iterations: iterations, events: events) }
                case .reject:
                    let data = PairRejection.privateData(PairRejection.asked)
                    try request.reject(privateData: data)
                    report.check(true, "server: rejected the request from \(peer) as it asked, with \(data.count) bytes of private data")
                case .done:
                    for session in sessions { session.join() }
                    sessions = []
                    try request.reject(privateData: PairRejection.privateData(PairRejection.done))
                    done = true
                }
            }
            for session in sessions { session.join() }
            report.check(done, "server: the client said done" + (done ? "" : " (no done request within 300 s)"))
            report.check(PinLedger.shared.isEmpty, "server: \(PinLedger.shared.pinnedPageCount) pages left pinned after every session")
        }
        report.attempt("server: closing the protection domain") {
            try domain.close()
            report.check(true, "server: ibv_dealloc_pd succeeded: every region and queue pair was released")
        }
        report.finish()
    }

    /// Exposes a write buffer and a read buffer of ``PairProtocol/transferSize``
    /// bytes, each registered for exactly the access the client needs, then answers
    /// the client's control messages until it says bye: posts receives of the sizes
    /// it will send (extracted directly from an iterator of `kind`), a receive for
    /// each WRITE WITH IMMEDIATE, fills the read buffer, and checks what arrived
    /// against the pattern of the client's seed.
    private func serveTransfer(_ request: RDMAConnectionRequest, kind: IOIteratorKind) throws {
        let target = try WholeBuffer(pages: PairProtocol.transferSize / pageSize)
        let pattern = try WholeBuffer(pages: PairProtocol.transferSize / pageSize)
        let keys = MRCache(domain: domain, access: .localWrite)
        let writable = try domain.registerMemory(address: target.address, length: target.count, access: [.localWrite, .remoteWrite])
        defer { try? writable.deregister() }
        let readable = try domain.registerMemory(address: pattern.address, length: pattern.count, access: .remoteRead)
        defer { try? readable.deregister() }
        let offer = PairOffer(write: RemoteBuffer(writable), read: RemoteBuffer(readable))
        let link = try PairLink(domain: domain, capabilities: QueuePairCapabilities(
            maxSendWorkRequests: 2, maxReceiveWorkRequests: 24, maxSendSGEs: 1, maxReceiveSGEs: 16)) { queuePair in
            try request.accept(queuePair, parameters: ConnectionParameters(privateData: offer.privateData, responderResources: 16))
        }
        var receiving = target.iterator(kind, .destination)
        var posted: [[SGE]] = []
        var immediates = 0
        defer {
            // Closing destroys the queue pair: nothing is in flight once it returns.
            try? link.close()
            for sges in posted { receiving.release(extractedSGEs: sges, keys: keys) }
            keys.flush()
        }
        let peer = request.peerHost
        try link.postControlReceive()
        while true {
            switch try link.receive() {
            case .expectSends(let sizes):
                for size in sizes {
                    var sges: [SGE] = []
                    sges.reserveCapacity(16)
                    let bytes = try receiving.extract(maxSize: size, into: &sges, maxSGEs: 16, keys: keys)
                    posted.append(sges)
                    guard bytes == size else { throw Failure("a receive covers \(bytes) of \(size) bytes") }
                    try sges.withUnsafeBufferPointer { try link.queuePair.postReceive(ReceiveWorkRequest(id: UInt64(posted.count), sges: $0)) }
                }
                try link.postControlReceive()
                try link.send(.ready)
            case .expectImmediate:
                immediates += 1
                try link.queuePair.postReceive(ReceiveWorkRequest(id: 1000 + UInt64(immediates), sges: UnsafeBufferPointer(start: nil, count: 0)))
                try link.postControlReceive()
                try link.send(.ready)
            case .verify(let operation, let seed):
                let completions = link.dataCompletions
                let expected = expectedCompletions(operation, posted: posted, immediates: immediates)
                let completionsMatch = completions.count == expected.count && zip(completions, expected).allSatisfy { got, want in
                    got.opcode == want.opcode && (want.byteCount ?? got.byteCount) == got.byteCount
                        && (got.opcode != .receiveRDMAWithImmediate || got.immediateData == PairProtocol.immediate)
                }
                for sges in posted { receiving.release(extractedSGEs: sges, keys: keys) }
                posted = []
                immediates = 0
                pattern.fill(seed: seed)
                let matches = target.sameBytes(as: pattern)
                let crc = CRC32C(UnsafeRawBufferPointer(target.bytes)).value
                report.check(matches && completionsMatch && keys.referenceCount == 0,
                             "server: \(kind) \(operation) 1 MiB from \(peer) byte-exact: \(matches ? "matches" : "DIFFERS FROM") the pattern "
                             + "of seed \(seed), CRC32C \(hex(crc)), \(completions.count) receive completions"
                             + (completionsMatch ? "" : " (expected \(expected.count))") + ", \(keys.referenceCount) region references left")
                // Cleared before the answer: the client's next operation may land as soon as it is sent.
                target.zero()
                receiving = target.iterator(kind, .destination)
                link.dataCompletions = []
                try link.postControlReceive()
                try link.send(.verified(crc: crc, matches: matches))
            case .prepareRead(let seed):
                pattern.fill(seed: seed)
                try link.postControlReceive()
                try link.send(.ready)
            case .bye:
                let end = try link.awaitEnd()
                report.check(end == .disconnected, "server: \(kind) session from \(peer) ended with \(end.map { "\($0)" } ?? "nothing in 10 s")")
                return
            case let message:
                throw Failure("unexpected \(message)")
            }
        }
    }

    /// The receive completions `operation` should have made: one per receive posted for
    /// a SEND, of its size; one per WRITE WITH IMMEDIATE receive (of the last request's
    /// size, which the server does not know); none for a WRITE.
    private func expectedCompletions(_ operation: PairOperation, posted: [[SGE]], immediates: Int) -> [(opcode: WorkCompletionOpcode, byteCount: Int?)] {
        switch operation {
        case .send: posted.map { (.receive, $0.reduce(0) { $0 + Int($1.length) }) }
        case .writeWithImmediate: Array(repeating: (.receiveRDMAWithImmediate, nil), count: immediates)
        case .write, .read: []
        }
    }

    /// Answers a ``PairEcho`` ping-pong of `iterations` round trips.
    private func serveEcho(_ request: RDMAConnectionRequest, iterations: Int, events: Bool) throws {
        let link = try PairLink(domain: domain, capabilities: PairEcho.capabilities) { queuePair in
            try request.accept(queuePair)
        }
        defer { try? link.close() }
        try PairEcho(link: link, domain: domain, events: events).answer(iterations: iterations)
        let end = try link.awaitEnd()
        report.check(end == .disconnected, "server: answered \(PairEcho.warmUp + iterations) SENDs from \(request.peerHost) "
                     + "\(events ? "with events" : "polling"), then \(end.map { "\($0)" } ?? "nothing in 10 s")")
    }

    /// Exposes `bytes` to RDMA WRITE for a stream; disconnects after `milliseconds`
    /// when it is not 0, or else waits for the client's bye.
    private func serveStream(_ request: RDMAConnectionRequest, bytes: Int, disconnectAfter milliseconds: Int) throws {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: pageSize)
        defer { memory.deallocate() }
        let writable = try domain.registerMemory(memory, access: [.localWrite, .remoteWrite])
        defer { try? writable.deregister() }
        let link = try PairLink(domain: domain, capabilities: QueuePairCapabilities(
            maxSendWorkRequests: 1, maxReceiveWorkRequests: 1, maxSendSGEs: 1, maxReceiveSGEs: 1)) { queuePair in
            try request.accept(queuePair, parameters: ConnectionParameters(
                privateData: PairOffer(write: RemoteBuffer(writable), read: nil).privateData))
        }
        defer { try? link.close() }
        let peer = request.peerHost
        if milliseconds > 0 {
            usleep(useconds_t(milliseconds * 1000))
            try link.connection.disconnect()
            report.check(true, "server: disconnected the RDMA WRITE stream from \(peer) \(milliseconds) ms after accepting, as it asked")
        } else {
            try link.postControlReceive()
            let message = try link.receive()
            let end = try link.awaitEnd()
            report.check(message == .bye && end == .disconnected,
                         "server: RDMA WRITE stream from \(peer) into \(bytes >> 10) KiB ended with \(message) and \(end.map { "\($0)" } ?? "nothing in 10 s")")
        }
    }
}
#endif
