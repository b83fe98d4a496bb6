// The two halves of the two-guest run (Scripts/rxe/run-pair): guest a runs
// `rdma-copy pair-server`, guest b `rdma-copy pair-client 192.0.2.1 2001:db8::1`.
// Each prints PASS:/FAIL: lines and ends with `N passed, N failed`; its exit status
// matches.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import IterExtract
import TestKit

/// The size of the generated files.
private let pairFileSize = 16 << 20
/// The seeds of the generated files: the one the client pushes, the one the server exposes.
private let pushSeed: UInt64 = 0x5055_5348
private let fetchSeed: UInt64 = 0x4645_5443

extension CopyBuffer {
    /// `count` bytes generated from `seed` (SplitMix64), the same on every host.
    static func generated(count: Int, seed: UInt64) throws(RDMACopyError) -> CopyBuffer {
        let buffer = try CopyBuffer(count: count)
        var generator = SplitMix64(seed: seed)
        for offset in stride(from: 0, to: count, by: 8) {
            let word = generator.next()
            for byte in 0..<min(8, count - offset) { buffer.bytes[offset + byte] = UInt8(truncatingIfNeeded: word >> (byte * 8)) }
        }
        return buffer
    }
}

struct PairServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair-server",
        abstract: "Serve on :: with a generated 16 MiB file to fetch, until the client's last session.")

    @OptionGroup var options: CopyOptions

    @Option(help: "Stop after this many sessions.")
    var sessions = 8

    @Option(help: "Stop after this many seconds.")
    var seconds = 230

    func run() throws {
        #if RDMA
        let server = try IBVerbsCopy.server(
            host: "::", port: options.port, device: options.deviceName,
            configuration: .init(maxSize: options.maxSize, file: try CopyBuffer.generated(count: pairFileSize, seed: fetchSeed)))
        print("INFO: rdma-copy pair-server on :: port \(options.port), up to \(sessions) sessions or \(seconds) s")
        let counts = server.serve(sessions: sessions, untilLastSession: true,
                                  deadline: .now.advanced(by: .seconds(seconds))) { result in
            let succeeded = (try? result.get().succeeded) ?? false
            print("\(succeeded ? "PASS" : "FAIL"): rdma-copy server: \(Serve.line(result))")
        }
        print("\(counts.succeeded) passed, \(counts.failed) failed")
        if counts.failed > 0 || counts.succeeded == 0 { throw ExitCode.failure }
        #else
        throw needsRDMA
        #endif
    }
}

struct PairClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair-client",
        abstract: "Push a generated 16 MiB file over IPv4 and fetch the server's over IPv6, both checked byte for byte.")

    @OptionGroup var options: CopyOptions

    @Argument(help: "The server's IPv4 address.")
    var host4: String

    @Argument(help: "The server's IPv6 address.")
    var host6: String

    func run() throws {
        #if RDMA
        var counts = (passed: 0, failed: 0)
        func check(_ name: String, _ body: () throws -> String) {
            do {
                print("PASS: \(name): \(try body())")
                counts.passed += 1
            } catch {
                print("FAIL: \(name): \(error)")
                counts.failed += 1
            }
        }
        let tuning = CopyTuning(connectRetry: .seconds(20))
        check("rdma-copy push over IPv4 \(host4)") {
            let client = try IBVerbsCopy.client(reaching: host4, maxSize: options.maxSize, tuning: tuning)
            let report = try client.push(try CopyBuffer.generated(count: pairFileSize, seed: pushSeed), to: host4, port: options.port)
            print("PAIR_COPY_WRITE_BW size=\(report.bytes) MBps=\(fixed(report.megabytesPerSecond, 2))")
            try Self.checkReleased(client.cache.referenceCount, client.ledger.pinnedPageCount)
            return "\(report)"
        }
        check("rdma-copy fetch over IPv6 \(host6)") {
            let client = try IBVerbsCopy.client(reaching: host6, maxSize: options.maxSize, tuning: tuning)
            let (copy, report) = try client.fetch(from: host6, port: options.port, isLastSession: true)
            print("PAIR_COPY_READ_BW size=\(report.bytes) MBps=\(fixed(report.megabytesPerSecond, 2))")
            let expected = try CopyBuffer.generated(count: pairFileSize, seed: fetchSeed)
            guard copy.hasSameBytes(as: expected) else { throw ValidationError("the fetched bytes differ from the server's file") }
            try Self.checkReleased(client.cache.referenceCount, client.ledger.pinnedPageCount)
            return "\(report), byte-exact"
        }
        print("\(counts.passed) passed, \(counts.failed) failed")
        if counts.failed > 0 { throw ExitCode.failure }
        #else
        throw needsRDMA
        #endif
    }

    /// Throws unless the MR cache holds no references and no page is pinned.
    private static func checkReleased(_ references: Int, _ pinned: Int) throws {
        guard references == 0, pinned == 0 else {
            throw ValidationError("after the session the MR cache holds \(references) references and \(pinned) pages are pinned")
        }
    }
}
