#if RDMA
import Glibc
import IterExtract
import RDMASGE
import TestKit
import SoftVerbs
import IBVerbs

/// The end-to-end suite: every scenario on SoftVerbs and on a libibverbs device,
/// checked on its own and against each other.
struct Suite {
    let report = Report()
    let device: IBVerbs
    let soft = SoftVerbs()
    let source: WholeBuffer
    let target: WholeBuffer
    let address: String?
    /// The network device under the RDMA port, which the link-events section takes down and up.
    let netdev = environment("E2E_NETDEV")
    let volume: Int
    let referenceLog: String

    init(deviceName: String?, gidIndex: Int?, address: String?, volume: Int, referenceLog: String) throws {
        let names = try IBVerbs.deviceNames()
        report.check(deviceName.map(names.contains) ?? !names.isEmpty,
                     "device \(deviceName ?? "any") among \(names.count) RDMA device(s): \(names)")
        device = try IBVerbs(name: deviceName)
        source = try WholeBuffer(pages: KUnit.bufferPages)
        target = try WholeBuffer(pages: KUnit.bufferPages)
        self.address = address
        self.volume = volume
        self.referenceLog = referenceLog
        let port = try device.queryPort()
        report.check(port.state == .active, "\(device.name) port \(port.number) \(port.state), active MTU \(port.activeMTU), "
                     + "max message \(port.maxMessageSize), \(port.gidTableLength) GID entries")
        let attributes = device.attributes
        report.check(attributes.maxSGEs >= 16 && attributes.maxMemoryRegionSize >= 1 << 20,
                     "\(device.name) limits: max SGE \(attributes.maxSGEs), max MR size \(attributes.maxMemoryRegionSize), "
                     + "max QP WR \(attributes.maxQueuePairWorkRequests), max CQE \(attributes.maxCompletionQueueEntries), "
                     + "RDMA READs in flight \(device.maxReadsInFlight)")
        let scanned = device.gid
        report.check(scanned.ipv4Address != nil && gidIndex.map { $0 == scanned.index } ?? true,
                     "source GID found by scanning the table: index \(scanned.index) \(scanned) (\(scanned.kind.map { "\($0)" } ?? "?"))"
                     + (gidIndex.map { ", harness says index \($0)" } ?? ""))
    }

    func run() -> Never {
        let started = now()
        report.attempt("verbs objects") {
            let ibDomain = try device.allocateProtectionDomain()
            let softDomain = try soft.allocateProtectionDomain()
            try section("transfers") { try transfers(ib: ibDomain, soft: softDomain) }
            try section("error cases") { try errorCases(ib: ibDomain, soft: softDomain) }
            try section("MR cache") { try cacheCases(ib: ibDomain, soft: softDomain) }
            try section("MR cache timing") { try cacheTiming(ib: ibDomain, soft: softDomain) }
            try section("stale memory") { try staleMemoryCases(ib: ibDomain) }
            try section("exact registrations") { try exactRegistrationCases(ib: ibDomain, soft: softDomain) }
            if let address { try section("rdma_cm") { try connectionManager(ib: ibDomain, address: address) } }
            try section("fork") { try forkCases(ib: ibDomain) }
            try section("throughput") { try throughput(ib: ibDomain) }
            try section("completion events") { try completionEvents(ib: ibDomain) }
            if let netdev { try section("link events") { try linkEvents(netdev: netdev) } }
            // dealloc_pd refuses (EBUSY) while any region or queue pair of the domain is left.
            try ibDomain.close()
            try softDomain.close()
            report.check(true, "every region and queue pair released: ibv_dealloc_pd and SoftVerbs close succeeded")
        }
        Report.say("INFO: suite took \(fixed(now() - started, 1)) s")
        report.finish()
    }

    private func section(_ name: String, _ body: () throws -> Void) throws {
        let start = now()
        report.attempt(name, body)
        Report.say("INFO: \(name) took \(fixed(now() - start, 1)) s")
    }

    private func transfers(ib: IBVerbsProtectionDomain, soft softDomain: SoftProtectionDomain) throws {
        let ibBuffers = try Buffers(domain: ib, source: source, target: target)
        let softBuffers = try Buffers(domain: softDomain, source: source, target: target)
        let ibRig = try Rig(device: device, domain: ib)
        let softRig = try Rig(device: soft, domain: softDomain)
        let (a, b) = (ibRig.a.endpoint, ibRig.b.endpoint)
        report.check(ibRig.a.state == .readyToSend && ibRig.b.state == .readyToSend && a.gid == device.gid.bytes
                     && a.lid == ibRig.a.port.lid && a.mtu == ibRig.a.port.activePathMTU,
                     "raw connection, endpoints exchanged as JSON: \(try json(a)) <-> \(try json(b)), both in RTS")
        for (k, kind) in WholeBuffer.kinds.enumerated() {
            for (o, operation) in KindTransfers<SoftVerbs>.Operation.allCases.enumerated() {
                let seed = UInt64(k * 8 + o + 1)
                let name = "\(kind) \(operation.rawValue) 1 MiB"
                var softRecord: TransferRecord?
                var ibRecord: TransferRecord?
                report.attempt("\(name) on SoftVerbs") {
                    softRecord = try KindTransfers(rig: softRig, buffers: softBuffers, kind: kind).run(
                        KindTransfers<SoftVerbs>.Operation(rawValue: operation.rawValue)!, seed: seed)
                }
                report.attempt("\(name) on \(device.name)") {
                    let record = try KindTransfers(rig: ibRig, buffers: ibBuffers, kind: kind).run(
                        KindTransfers<IBVerbs>.Operation(rawValue: operation.rawValue)!, seed: seed)
                    ibRecord = record
                    report.check(true, "\(name) on \(device.name): bytes verified, \(record.completions.count) completions, all success")
                }
                if let softRecord, let ibRecord {
                    report.check(softRecord == ibRecord, "\(name): SoftVerbs and \(device.name) agree on the bytes "
                                 + "(digest \(String(ibRecord.digest, radix: 16))) and on \(ibRecord.completions.count) completions"
                                 + (softRecord == ibRecord ? "" : " — soft \(softRecord.completions) vs \(ibRecord.completions)"))
                }
            }
        }
        try ibRig.close()
        try softRig.close()
        try ibBuffers.close()
        try softBuffers.close()
    }

    private func errorCases(ib: IBVerbsProtectionDomain, soft softDomain: SoftProtectionDomain) throws {
        let ibBuffers = try Buffers(domain: ib, source: source, target: target)
        let softBuffers = try Buffers(domain: softDomain, source: source, target: target)
        defer { try? ibBuffers.close(); try? softBuffers.close() }
        let ibCases = try ErrorCases(device: device, domain: ib, buffers: ibBuffers).run()
        let softCases = try ErrorCases(device: soft, domain: softDomain, buffers: softBuffers).run()
        let expected = [
            "bad lkey": "\(WorkCompletionStatus.localProtectionError),", "bad rkey": "\(WorkCompletionStatus.remoteAccessError),",
            "remote range": "\(WorkCompletionStatus.remoteAccessError),", "too many SGEs": "refused by ibv_post_send",
        ]
        for (ibCase, softCase) in zip(ibCases, softCases) {
            let want = expected.first { ibCase.name.hasPrefix($0.key) }!.value
            let outcome = rxeDeviation(ibCase.outcome)
            report.check(outcome.contains(want), "\(ibCase.name) on \(device.name): \(ibCase.outcome)")
            report.check(outcome == softCase.outcome,
                         "\(ibCase.name): SoftVerbs and \(device.name) agree" + (outcome == softCase.outcome ? "" : " — soft: \(softCase.outcome)"))
        }
    }

    /// Linux 6.1's rxe completes a request whose lkey names no region with
    /// `IBV_WC_LOC_QP_OP_ERR`, where the specification (and SoftVerbs, and hardware)
    /// says `IBV_WC_LOC_PROT_ERR`. On rxe only, that one status reads as the other,
    /// and the line says so; any other status still fails.
    private func rxeDeviation(_ outcome: String) -> String {
        let reported = "\(WorkCompletionStatus.localQueuePairOperationError)"
        guard device.name.hasPrefix("rxe"), outcome.hasPrefix(reported) else { return outcome }
        Report.say("INFO: rxe deviation: \(reported) for an unknown lkey, read as \(WorkCompletionStatus.localProtectionError)")
        return "\(WorkCompletionStatus.localProtectionError)" + outcome.dropFirst(reported.count)
    }

    private func cacheCases(ib: IBVerbsProtectionDomain, soft softDomain: SoftProtectionDomain) throws {
        let ibBuffers = try Buffers(domain: ib, source: source, target: target)
        let softBuffers = try Buffers(domain: softDomain, source: source, target: target)
        defer { try? ibBuffers.close(); try? softBuffers.close() }
        let segments = 16
        var ibResult = try CacheCases(device: device, domain: ib, buffers: ibBuffers).run(segments: segments)
        ibResult.staleKeyStatus = rxeDeviation(ibResult.staleKeyStatus)
        let softResult = try CacheCases(device: soft, domain: softDomain, buffers: softBuffers).run(segments: segments)
        let first = ibResult.firstPass, second = ibResult.secondPass, last = ibResult.afterInvalidation
        report.check(first.misses == segments && first.hits == 0 && first.registrations == segments,
                     "MR cache on \(device.name), first pass over \(segments) separate buffers: \(first.misses) misses, "
                     + "\(first.hits) hits, \(first.registrations) ibv_reg_mr")
        report.check(second.hits - first.hits == segments && second.misses == first.misses && second.registrations == first.registrations,
                     "MR cache on \(device.name), second pass: \(second.hits - first.hits) hits, \(second.misses - first.misses) misses, "
                     + "\(second.registrations - first.registrations) new registrations")
        report.check(last.invalidations == segments && last.deregistrations == segments && ibResult.regionsAfterInvalidation == 0,
                     "MR cache on \(device.name), invalidation: \(last.invalidations) regions invalidated, "
                     + "\(last.deregistrations) ibv_dereg_mr, \(ibResult.regionsAfterInvalidation) left")
        report.check(ibResult.staleKeyStatus == "\(WorkCompletionStatus.localProtectionError)",
                     "a request with an lkey from before invalidation fails on \(device.name): \(ibResult.staleKeyStatus)")
        report.check(ibResult == softResult, "MR cache: SoftVerbs and \(device.name) agree on counts and statuses"
                     + (ibResult == softResult ? "" : " — soft \(softResult)"))
    }

    /// Times MR-cache hits against real registrations and reports both and their ratio
    /// (issue 6: a hit at least 50× cheaper than a registration). Times under emulation
    /// swing from run to run, so the only bound checked is that a hit is cheaper at all.
    /// Also checks that both backends refuse to register memory that is not mapped alike.
    private func cacheTiming(ib: IBVerbsProtectionDomain, soft softDomain: SoftProtectionDomain) throws {
        let count = 2000
        for (name, measurement) in [(device.name, try CacheTiming.measure(in: ib, count: count)),
                                    (soft.name, try CacheTiming.measure(in: softDomain, count: count))] {
            let hit = measurement.hitNanoseconds, registration = measurement.registrationNanoseconds
            Report.say("MRCACHE_TIMING rdma-e2e device=\(name) size=\(measurement.size) count=\(count) "
                       + "hit_ns=\(fixed(hit, 1)) register_ns=\(fixed(registration, 1))")
            Report.say("MRCACHE_RATIO rdma-e2e register/hit on \(name) = \(fixed(registration, 1)) / \(fixed(hit, 1)) "
                       + "= \(fixed(measurement.ratio, 1)) (goal 50)")
            report.check(measurement.hits == count && measurement.registrations == count
                         && measurement.deregistrations == count && measurement.regionsLeft == 0 && measurement.ratio > 1,
                         "MR cache on \(name): \(count) hits (resolve + release) at \(fixed(hit / 1000, 3)) µs each, "
                         + "\(count) registrations of \(measurement.size >> 10) KiB (register + deregister) at \(fixed(registration / 1000, 3)) µs each: "
                         + "a registration costs \(fixed(measurement.ratio, 1)) hits")
        }
        let ibErrno = try CacheTiming.unmappedRegistrationErrno(in: ib)
        let softErrno = try CacheTiming.unmappedRegistrationErrno(in: softDomain)
        report.check(ibErrno == EFAULT && softErrno == EFAULT,
                     "registering a page that is not mapped: \(device.name) errno \(ibErrno.map { "\($0)" } ?? "none (registered)"), "
                     + "SoftVerbs errno \(softErrno.map { "\($0)" } ?? "none (registered)") (EFAULT is \(EFAULT))")
    }

    /// A listener and a connection of this process through librdmacm, the server side
    /// on its own thread: a rejection with private data, then a connection with
    /// private data both ways that moves data for every operation, then a disconnect
    /// both sides see.
    private func connectionManager(ib: IBVerbsProtectionDomain, address: String) throws {
        let buffers = try Buffers(domain: ib, source: source, target: target)
        defer { try? buffers.close() }
        let listener = try RDMAListener(host: address)
        defer { try? listener.close() }
        let spare = try Rig(device: device, domain: ib) { _, _ in }
        let refusal = JoinableThread { try? listener.accept(timeout: .seconds(10))?.reject(privateData: Array("busy".utf8)) }
        do {
            _ = try RDMAConnection.connect(to: address, port: listener.port, queuePair: spare.a)
            report.check(false, "a rejected rdma_cm connection attempt succeeded")
        } catch {
            let data = if case .rejected(let data)? = error.connectionEvent { data } else { [UInt8]() }
            report.check(error.errno == ECONNREFUSED && data.starts(with: Array("busy".utf8)) && spare.a.state == .reset,
                         "rdma_cm rejection: errno \(error.errno), private data starts with \"\(String(decoding: data.prefix(4), as: UTF8.self))\", "
                         + "queue pair back in \(spare.a.state)")
        }
        refusal.join()
        try spare.close()

        let server = ServerSide()
        let rig = try Rig(device: device, domain: ib) { a, b in
            let acceptor = JoinableThread { [b] in
                server.result = Result { () throws(VerbsError) -> RDMAConnection in
                    guard let request = try listener.accept(timeout: .seconds(10)) else {
                        throw VerbsError(.getConnectionEvent, errno: ETIMEDOUT, "no request")
                    }
                    server.request = request.peerParameters
                    return try request.accept(b, parameters: ConnectionParameters(privateData: Array("server".utf8)))
                }
            }
            server.client = try RDMAConnection.connect(
                to: address, port: listener.port, queuePair: a, parameters: ConnectionParameters(privateData: Array("client".utf8)))
            acceptor.join()
        }
        let accepted = try server.result!.get()
        let client = server.client!
        let firstEvents = (try client.takeEvent(), try accepted.takeEvent())
        report.check(rig.a.state == .readyToSend && rig.b.state == .readyToSend
                     && client.peerParameters.privateData.starts(with: Array("server".utf8))
                     && server.request!.privateData.starts(with: Array("client".utf8))
                     && firstEvents.0 == .established && firstEvents.1 == .established,
                     "rdma_cm over \(address):\(listener.port): queue pairs \(rig.a.number) <-> \(rig.b.number) in RTS, private data both ways "
                     + "(\(client.peerParameters.privateData.count) and \(server.request!.privateData.count) bytes as delivered), established on both sides")
        for (o, operation) in KindTransfers<IBVerbs>.Operation.allCases.enumerated() {
            report.attempt("IOVEC \(operation.rawValue) over rdma_cm") {
                let record = try KindTransfers(rig: rig, buffers: buffers, kind: .iovec).run(operation, seed: UInt64(100 + o))
                report.check(true, "IOVEC \(operation.rawValue) 1 MiB over rdma_cm: bytes verified, \(record.completions.count) completions")
            }
        }
        try client.disconnect()
        let seen = (try accepted.nextEvent(timeout: .seconds(10)), try client.nextEvent(timeout: .seconds(10)))
        report.check(seen.0 == .disconnected && seen.1 == .disconnected && rig.a.state == .error && rig.b.state == .error,
                     "rdma_cm disconnect: server saw \(seen.0.map { "\($0)" } ?? "nothing"), client saw \(seen.1.map { "\($0)" } ?? "nothing"), "
                     + "queue pairs \(rig.a.state) and \(rig.b.state)")
        try rig.close()
    }

    /// What the server thread of ``connectionManager(ib:address:)`` hands back.
    private final class ServerSide: @unchecked Sendable {
        var result: Result<RDMAConnection, VerbsError>?
        var request: ConnectionParameters?
        var client: RDMAConnection?
    }

    /// The port's link taken down and up: typed device events, on the descriptor and awaited.
    private func linkEvents(netdev: String) throws {
        let outcome = try LinkEvents(device: device, netdev: netdev).run()
        report.check(outcome.down == .portError(port: device.port.number),
                     "\(netdev) down: \(device.name) reported \(outcome.down.map { "\($0)" } ?? "nothing") on its event descriptor")
        report.check(outcome.up == .portActive(port: device.port.number) && outcome.activeAgainAfter != nil,
                     "\(netdev) up: awaited device.events() yielded \(outcome.up.map { "\($0)" } ?? "nothing"), port ACTIVE again after "
                     + (outcome.activeAgainAfter.map { "\(fixed($0, 2)) s" } ?? "more than 10 s"))
    }

    private func throughput(ib: IBVerbsProtectionDomain) throws {
        let region = try ib.registerMemory(address: target.address, length: target.count, access: .all)
        defer { try? region.deregister() }
        let depth = 128
        let rig = try Rig(device: device, domain: ib, capabilities: Throughput<IBVerbsProtectionDomain>.capabilities(depth: depth))
        defer { try? rig.close() }
        let keys = MRCache(domain: ib, access: .localWrite)
        defer { keys.flush() }
        let measurement = try Throughput(queuePair: rig.a, queue: rig.aQueue, target: RemoteBuffer(region), keys: keys)
            .run(volume: volume, depth: depth)
        let ours = measurement.mebibytesPerSecond
        Report.say("THROUGHPUT rdma-e2e size=65536 MBps=\(fixed(ours, 2)) bytes=\(measurement.bytes) "
                   + "seconds=\(fixed(measurement.seconds, 2))")
        report.check(true, "RDMA WRITE of \(measurement.bytes >> 20) MiB in 64 KiB messages from an IOVEC of 16 × 4 KiB: "
                     + "\(fixed(ours, 2)) MB/s")
        if let reference = Self.referenceThroughput(log: referenceLog) {
            Report.say("THROUGHPUT_RATIO rdma-e2e/ib_write_bw = \(fixed(ours, 2)) / \(fixed(reference, 2))"
                       + " = \(fixed(ours / reference, 3)) (goal 0.9)")
        } else {
            Report.say("INFO: no ib_write_bw result in \(referenceLog) (run-e2e --perf writes it), no ratio")
        }
    }

    /// Completion channels on the device: a late completion awaited with events costs
    /// (almost) no CPU where polling burns a core; SEND ping-pong latency with events
    /// and with polling (compare the IB_SEND_LAT lines of `run-e2e --perf`); a chain of
    /// 64 requests in one post against 64 posts; a refused request inside a chain; and
    /// the device's asynchronous events.
    private func completionEvents(ib: IBVerbsProtectionDomain) throws {
        let cases = EventCases(domain: ib)
        let pair = try EventCases.Pair(domain: ib)
        let event = try cases.waitCPU(pair, events: true)
        let polling = try cases.waitCPU(pair, events: false)
        Report.say("WAIT_CPU events=\(fixed(event.cpu * 100, 2))% polling=\(fixed(polling.cpu * 100, 2))% "
                   + "ratio=\(fixed(polling.cpu / max(event.cpu, 1e-6), 1)) (waits of \(fixed(event.wall, 2)) s and \(fixed(polling.wall, 2)) s)")
        report.check(event.wall >= 1.9 && event.cpu < 0.02,
                     "waiting \(fixed(event.wall, 2)) s for a late completion with CompletionQueue.wait(timeout:) on \(device.name) "
                     + "costs \(fixed(event.cpu * 100, 2))% of a core (limit 2%); busy polling \(fixed(polling.cpu * 100, 1))%")
        let iterations = 1000
        let eventLatency = try cases.pingPong(pair, events: true, iterations: iterations)
        let pollingLatency = try cases.pingPong(pair, events: false, iterations: iterations)
        Report.say("SEND_LATENCY rdma-e2e mode=events size=64 avg_us=\(fixed(eventLatency, 2))")
        Report.say("SEND_LATENCY rdma-e2e mode=polling size=64 avg_us=\(fixed(pollingLatency, 2))")
        report.check(true, "64-byte SEND ping-pong on \(device.name), \(iterations) round trips: one way \(fixed(eventLatency, 2)) µs "
                     + "with events, \(fixed(pollingLatency, 2)) µs polling")
        let rounds = 200
        let chained = try cases.postCost(pair, chained: true, rounds: rounds)
        let single = try cases.postCost(pair, chained: false, rounds: rounds)
        Report.say("POST_CHAIN rdma-e2e requests=64 chained_ns=\(fixed(chained, 1)) single_ns=\(fixed(single, 1)) "
                   + "ratio=\(fixed(single / chained, 2))")
        report.check(true, "64 RDMA WRITEs posted on \(device.name) \(rounds) times: \(fixed(chained, 1)) ns per request in one chain, "
                     + "\(fixed(single, 1)) ns posted one by one (\(fixed(single / chained, 2))×), all completed")
        let refused = try cases.refusedChain(pair)
        report.check(refused?.failedRequest == 3, "a chain with too many SGEs in request 3 on \(device.name): "
                     + (refused.map { "\($0)" } ?? "posted"))
        try pair.close()
        report.check(true, "queues with channels closed after events: unacknowledged events were acknowledged first")
        var events: [DeviceEvent] = []
        while let event = try device.takeEvent() { events.append(event) }
        report.check(!events.contains { $0.isFailure }, "device events on \(device.name) without blocking: \(events.isEmpty ? "none" : "\(events)")")
    }

    /// The average MB/s of ib_write_bw's 64 KiB line in the client's log.
    static func referenceThroughput(log path: String) -> Double? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var result: Double?
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let fields = String(cString: line!).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            if fields.count >= 5, fields[0] == "65536", let value = Double(fields[3]) { result = value }
        }
        return result
    }
}
#endif
