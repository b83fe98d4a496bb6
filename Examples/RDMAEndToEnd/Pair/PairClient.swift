#if RDMA
import Glibc
import IBVerbs
import IterExtract
import RDMASGE
import ScatterList
import Synchronization
import TestKit

/// `rdma-e2e pair-client HOST4 HOST6`: against `pair-server` on another machine,
/// every operation for every iterator kind over IPv4, a transfer over IPv6, a
/// rejection, the server going away in the middle of an RDMA WRITE stream, eight
/// concurrent connections through one protection domain and one MR cache, and
/// RDMA WRITE throughput; then `done`.
struct PairClient {
    let report = Report()
    let host4: String
    let host6: String
    let volume: Int
    let domain: IBVerbsProtectionDomain
    /// The cache every transfer resolves its local keys through.
    let keys: MRCache<IBVerbsProtectionDomain>

    init(host4: String, host6: String, volume: Int) throws {
        self.host4 = host4
        self.host6 = host6
        self.volume = volume
        domain = try IBVerbs(reaching: host4).allocateProtectionDomain()
        keys = MRCache(domain: domain, access: .localWrite)
    }

    func run() -> Never {
        for (k, kind) in WholeBuffer.kinds.enumerated() {
            report.attempt("\(kind) transfers over \(host4)") { try transfer(kind, over: host4, seed: UInt64(10 * k + 1)) }
        }
        report.attempt("IOVEC transfers over \(host6)") { try transfer(.iovec, over: host6, seed: 100) }
        report.attempt("rejection") { try rejection() }
        report.attempt("server going away") { try serverGoingAway(after: 1500) }
        report.attempt("8 concurrent connections") { try concurrentConnections(8) }
        report.attempt("throughput") { try throughput(depth: 128) }
        for events in [true, false] {
            report.attempt("SEND latency \(events ? "with events" : "polling")") { try latency(events: events, iterations: 200) }
        }
        report.attempt("done") { try done() }
        let statistics = keys.statistics
        report.check(keys.referenceCount == 0 && PinLedger.shared.isEmpty,
                     "client MR cache after everything: \(statistics.hits) hits, \(statistics.misses) misses, "
                     + "\(statistics.registrations) registrations, \(keys.regionCount) regions, \(keys.referenceCount) references; "
                     + "\(PinLedger.shared.pinnedPageCount) pages pinned")
        keys.flush()
        report.attempt("client: closing the protection domain") {
            try domain.close()
            report.check(true, "client: ibv_dealloc_pd succeeded: every region and queue pair was released")
        }
        report.finish()
    }

    /// Connects to the server at `host` asking for `request`, trying again for 30 s
    /// while nobody listens there (the server is not up yet).
    private func connect(to host: String, asking request: PairRequest, capabilities: QueuePairCapabilities) throws -> PairLink {
        let deadline = now() + 30
        while true {
            do {
                return try PairLink(domain: domain, capabilities: capabilities) { queuePair in
                    try RDMAConnection.connect(to: host, port: PairProtocol.port, queuePair: queuePair,
                                               parameters: ConnectionParameters(privateData: request.privateData, initiatorDepth: 16))
                }
            } catch let error as VerbsError where Self.nobodyListening(error) && now() < deadline {
                Report.say("INFO: no pair server at \(host) yet (\(error)); trying again in 1 s")
                sleep(1)
            }
        }
    }

    /// Whether `error` says that no pair server listens (yet): a rejection without
    /// a pair server's private data, or an address that does not answer.
    private static func nobodyListening(_ error: VerbsError) -> Bool {
        switch error.errno {
        case ECONNREFUSED:
            guard case .rejected(let data)? = error.connectionEvent else { return true }
            return PairRejection.text(data) == nil
        case EHOSTUNREACH, ETIMEDOUT: return true
        default: return false
        }
    }

    /// Every ``PairOperation`` of 1 MiB from or into an iterator of `kind` (extracted
    /// directly, through the shared MR cache, planned with ``WorkRequestPlan``), each
    /// verified by the side that received the data; `label` starts every line.
    /// Returns whether every operation was byte-exact.
    @discardableResult
    private func transfer(_ kind: IOIteratorKind, over host: String, seed: UInt64, label: String = "") throws -> Bool {
        let size = PairProtocol.transferSize
        let source = try WholeBuffer(pages: size / pageSize)
        let target = try WholeBuffer(pages: size / pageSize)
        defer {
            forget(source)
            forget(target)
        }
        let link = try connect(to: host, asking: .transfer(kind: kind), capabilities: QueuePairCapabilities(
            maxSendWorkRequests: 20, maxReceiveWorkRequests: 2, maxSendSGEs: 16, maxReceiveSGEs: 1))
        defer { try? link.close() }
        let offer = try PairOffer(privateData: link.connection.peerParameters.privateData)
        guard offer.write.length == size, let readable = offer.read, readable.length == size else {
            throw Failure("the server offered \(offer), not two buffers of \(size) bytes")
        }
        let plan = WorkRequestPlan(requestCapacity: 16, limits: KindTransfers<IBVerbs>.limits)
        var exact = true
        for (o, operation) in PairOperation.allCases.enumerated() {
            let seed = seed + UInt64(o)
            source.fill(seed: seed)
            target.zero()
            var requests = 0
            var moved: UInt64 = 0
            switch operation {
            case .send:
                var iterator = source.iterator(kind, .source)
                while iterator.count > 0 {
                    try plan.build(from: &iterator, operation: .send, keys: keys)
                    requests += try link.run(plan, announcing: .expectSends(sizes: plan.requests.map(\.byteCount)))
                }
            case .write, .writeWithImmediate:
                var iterator = source.iterator(kind, .source)
                while iterator.count > 0 {
                    let remote = offer.write.address + moved
                    moved += UInt64(try plan.build(from: &iterator, operation: operation == .write
                        ? .rdmaWrite(remoteAddress: remote, rkey: offer.write.rkey)
                        : .rdmaWriteWithImmediate(remoteAddress: remote, rkey: offer.write.rkey, immediateData: PairProtocol.immediate),
                        keys: keys))
                    requests += try link.run(plan, announcing: operation == .write ? nil : .expectImmediate)
                }
            case .read:
                let answer = try link.ask(.prepareRead(seed: seed))
                guard answer == .ready else { throw Failure("the server answered \(answer) to prepare the read buffer") }
                var iterator = target.iterator(kind, .destination)
                while iterator.count > 0 {
                    moved += UInt64(try plan.build(from: &iterator, operation: .rdmaRead(
                        remoteAddress: readable.address + moved, rkey: readable.rkey), keys: keys))
                    requests += try link.run(plan)
                }
            }
            let crc = CRC32C(UnsafeRawBufferPointer(source.bytes)).value
            let what = "\(label)\(kind) \(operation) 1 MiB over \(host) in \(requests) requests"
            if operation == .read {
                let pulled = CRC32C(UnsafeRawBufferPointer(target.bytes)).value
                let matches = target.sameBytes(as: source)
                exact = report.check(matches, "\(what): the bytes pulled \(matches ? "are" : "are NOT") the server's pattern of seed \(seed), "
                             + "CRC32C \(hex(pulled))") && exact
            } else {
                let answer = try link.ask(.verify(operation, seed: seed))
                guard case .verified(let theirs, let matches) = answer else { throw Failure("the server answered \(answer) to verify") }
                exact = report.check(matches && theirs == crc, "\(what): the server found the bytes \(matches ? "byte-exact" : "DIFFERENT"), "
                             + "its CRC32C \(hex(theirs)), the client's \(hex(crc))") && exact
            }
        }
        try link.send(.bye)
        try link.connection.disconnect()
        return exact
    }

    /// Invalidates the shared cache over `buffer` (both of its views) before it is
    /// freed: a later buffer mapped at the same addresses must not resolve to regions
    /// that pin the old pages.
    private func forget(_ buffer: WholeBuffer) {
        for range in [buffer.mappingRange, buffer.poolRange] {
            keys.invalidate(MemoryRange(address: range.lowerBound, length: Int(range.upperBound - range.lowerBound)))
        }
    }

    /// A request the server rejects as asked: `ECONNREFUSED` with the server's text in
    /// the rejection's private data, the queue pair back in RESET.
    private func rejection() throws {
        do {
            let link = try connect(to: host4, asking: .reject, capabilities: QueuePairCapabilities())
            try link.close()
            report.check(false, "a connection the server should reject was accepted")
        } catch let error as VerbsError {
            let data = if case .rejected(let data)? = error.connectionEvent { data } else { [UInt8]() }
            let text = PairRejection.text(data)
            report.check(error.errno == ECONNREFUSED && text == PairRejection.asked,
                         "rejected over \(host4): errno \(error.errno) (ECONNREFUSED is \(ECONNREFUSED)), \(data.count) bytes of private data "
                         + "saying \"\(text ?? "nothing of a pair server")\"")
        }
    }

    /// Streams RDMA WRITEs (the throughput loop) to a server that disconnects after
    /// `milliseconds`: the stream must stop with a failed completion, the connection
    /// must report ``ConnectionEvent/disconnected``, and nothing may stay pinned or
    /// referenced afterwards.
    private func serverGoingAway(after milliseconds: Int) throws {
        let depth = 32
        let streamKeys = MRCache(domain: domain, access: .localWrite)
        defer { streamKeys.flush() }
        let link = try connect(to: host4, asking: .stream(bytes: 1 << 20, disconnectAfter: milliseconds),
                               capabilities: Throughput<IBVerbsProtectionDomain>.capabilities(depth: depth))
        defer { try? link.close() }
        let offer = try PairOffer(privateData: link.connection.peerParameters.privateData)
        var events: [ConnectionEvent] = []
        let stream = Throughput(queuePair: link.queuePair, queue: link.sendQueue, target: offer.write, keys: streamKeys)
        let started = now()
        do {
            _ = try stream.run(volume: 1 << 40, depth: depth) {
                if let event = try link.connection.takeEvent() { events.append(event) }
            }
            report.check(false, "an RDMA WRITE stream to a server that went away finished")
        } catch let interrupted as Throughput<IBVerbsProtectionDomain>.Interrupted {
            let stopped = now() - started
            if !events.contains(where: \.endsConnection), let event = try link.awaitEnd() { events.append(event) }
            let failed = if case .completion(let completion) = interrupted.cause { completion.status != .success } else { true }
            let statistics = streamKeys.statistics
            report.check(failed && events.contains(.disconnected) && streamKeys.referenceCount == 0 && PinLedger.shared.isEmpty,
                         "server went away \(milliseconds) ms into an RDMA WRITE stream: \(interrupted) after \(fixed(stopped, 2)) s; "
                         + "events \(events); MR cache \(statistics.misses) misses, \(statistics.hits) hits, "
                         + "\(streamKeys.referenceCount) references left; \(PinLedger.shared.pinnedPageCount) pages pinned")
        }
    }

    /// `count` threads, each with a connection (and queue pair) of its own, alternately
    /// over IPv4 and IPv6, each running every operation for one iterator kind through
    /// the one protection domain and the one MR cache.
    private func concurrentConnections(_ count: Int) throws {
        let before = keys.statistics
        let succeeded = Tally()
        JoinableThread.run(count) { [self] index in
            let kind = WholeBuffer.kinds[index % WholeBuffer.kinds.count]
            let host = index % 2 == 0 ? host4 : host6
            report.attempt("concurrent connection \(index + 1) of \(count) (\(kind) over \(host))") {
                if try transfer(kind, over: host, seed: UInt64(1000 + 10 * index), label: "connection \(index + 1) of \(count): ") {
                    succeeded.add()
                }
            }
        }
        let after = keys.statistics
        report.check(succeeded.count == count && keys.referenceCount == 0,
                     "\(succeeded.count) of \(count) concurrent connections moved every operation byte-exact through "
                     + "one protection domain and one MR cache: \(after.hits - before.hits) hits, \(after.misses - before.misses) misses, "
                     + "\(after.registrations - before.registrations) registrations, \(keys.referenceCount) references left")
    }

    /// A count that threads add to.
    private final class Tally: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    /// RDMA WRITE of `volume` bytes in 64 KiB messages from an IOVEC, `depth` in flight,
    /// into the server's buffer: prints `PAIR_WRITE_BW size=65536 MBps=X` (MiB/s, as
    /// ib_write_bw reports).
    private func throughput(depth: Int) throws {
        let streamKeys = MRCache(domain: domain, access: .localWrite)
        defer { streamKeys.flush() }
        let link = try connect(to: host4, asking: .stream(bytes: 1 << 20, disconnectAfter: 0),
                               capabilities: Throughput<IBVerbsProtectionDomain>.capabilities(depth: depth))
        defer { try? link.close() }
        let offer = try PairOffer(privateData: link.connection.peerParameters.privateData)
        let measurement = try Throughput(queuePair: link.queuePair, queue: link.sendQueue, target: offer.write, keys: streamKeys)
            .run(volume: volume, depth: depth)
        Report.say("PAIR_WRITE_BW size=65536 MBps=\(fixed(measurement.mebibytesPerSecond, 2))")
        report.check(true, "RDMA WRITE of \(measurement.bytes >> 20) MiB to \(host4) in 64 KiB messages from an IOVEC of 16 × 4 KiB, "
                     + "\(depth) in flight: \(fixed(measurement.mebibytesPerSecond, 2)) MB/s (2^20 B/s, as ib_write_bw) "
                     + "in \(fixed(measurement.seconds, 2)) s")
        try link.send(.bye)
        try link.connection.disconnect()
    }

    /// Tells the server that the client is done: it rejects the request with its
    /// goodbye and exits.
    /// A 64-byte SEND ping-pong against the server, next to `ib_send_lat` between the
    /// same guests (the PAIR_IB_SEND_LAT lines).
    private func latency(events: Bool, iterations: Int) throws {
        let link = try connect(to: host4, asking: .echo(iterations: iterations, events: events), capabilities: PairEcho.capabilities)
        defer { try? link.close() }
        let oneWay = try PairEcho(link: link, domain: domain, events: events).ping(iterations: iterations)
        let mode = events ? "events" : "polling"
        Report.say("PAIR_SEND_LAT mode=\(mode) size=\(PairEcho.size) avg_us=\(fixed(oneWay, 2))")
        report.check(true, "64-byte SEND ping-pong with \(host4), \(iterations) round trips, both sides \(events ? "asleep on completion channels" : "polling"): "
                     + "\(fixed(oneWay, 2)) µs one way")
    }

    private func done() throws {
        do {
            let link = try connect(to: host4, asking: .done, capabilities: QueuePairCapabilities())
            try link.close()
            report.check(false, "the server accepted the done request")
        } catch let error as VerbsError {
            let text = if case .rejected(let data)? = error.connectionEvent { PairRejection.text(data) } else { String?.none }
            report.check(error.errno == ECONNREFUSED && text == PairRejection.done,
                         "done: the server answered \"\(text ?? "nothing")\" (errno \(error.errno))")
        }
    }
}
#endif
