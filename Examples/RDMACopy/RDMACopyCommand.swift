// rdma-copy: two programs, on two hosts, copying a file by RDMA through the public
// API: the server listens, the client connects and learns the server's buffer from
// the accept's private data, then pushes a file by RDMA WRITE (checked by SHA-256 on
// the server) or fetches the server's file by RDMA READ (checked on the client).
// The wire protocol is in CopyWire.swift; the logic, generic over the verbs
// backends, in CopyServer and CopyClient.
//
//     rdma-copy serve [--file F] [--output PATH]     # the server (RDMA trait)
//     rdma-copy send FILE HOST                       # push FILE to HOST
//     rdma-copy fetch HOST OUT                       # fetch HOST's file into OUT
//     rdma-copy loopback FILE                        # both in this process, on SoftVerbs
//     rdma-copy pair-server | pair-client HOST4 HOST6   # Scripts/rxe/run-pair
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import TestKit
#if RDMA
import IBVerbs
#endif

@main
struct RDMACopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rdma-copy",
        abstract: "Copy a file between two hosts by RDMA WRITE (send) or RDMA READ (fetch), verified by SHA-256.",
        subcommands: [Serve.self, Send.self, Fetch.self, Loopback.self, PairServer.self, PairClient.self])
}

/// Options every subcommand that talks to a peer shares.
struct CopyOptions: ParsableArguments {
    @Option(help: "The server's port.")
    var port: UInt16 = 7472

    @Option(help: ArgumentHelp("The most bytes one copy may hold (K, M, G suffixes are powers of 2).", valueName: "size"),
            transform: { text in
                let units: [Character: Int] = ["K": 10, "M": 20, "G": 30]
                let shift = text.last.flatMap { units[Character($0.uppercased())] } ?? 0
                guard let value = Int(shift == 0 ? Substring(text) : text.dropLast()), value > 0,
                      value <= Int.max >> shift else { throw ValidationError("not a positive size: \(text)") }
                return value << shift
            })
    var maxSize: Int = 1 << 30

    @Option(help: "The RDMA device a server listens on (default: $E2E_RDMA_DEVICE, else the first).")
    var device: String?

    /// The device to serve on: the option, else the harness's, else any.
    var deviceName: String? { device ?? getenv("E2E_RDMA_DEVICE").map { String(cString: $0) } }
}

/// Thrown by subcommands that need librdmacm in a build without it.
let needsRDMA = ValidationError("talking to another host needs librdmacm: build with --traits RDMA")

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Listen, and take pushes and fetches one after another.")

    @OptionGroup var options: CopyOptions

    @Option(help: "The address to listen on (:: takes IPv6 and IPv4).")
    var host = "::"

    @Option(help: "A file clients may fetch (exposed read-only, one session at a time).")
    var file: String?

    @Option(help: "Where to write each verified push.")
    var output: String?

    @Option(help: "Stop after this many sessions (default: never).")
    var sessions: Int?

    func run() throws {
        #if RDMA
        let configuration = CopyServer<RDMAListener, IBVerbsProtectionDomain>.Configuration(
            maxSize: options.maxSize, file: try file.map { try CopyBuffer(contentsOf: $0, maxSize: options.maxSize) },
            outputPath: output)
        let server = try IBVerbsCopy.server(host: host, port: options.port, device: options.deviceName, configuration: configuration)
        print("rdma-copy serving on \(host) port \(server.listener.port), pushes up to \(options.maxSize) bytes"
              + (file.map { ", fetch exposes \($0)" } ?? ""))
        let counts = server.serve(sessions: sessions) { print(Self.line($0)) }
        if counts.failed > 0 { throw ExitCode.failure }
        #else
        throw needsRDMA
        #endif
    }

    /// A session's log line.
    static func line<Session: CustomStringConvertible>(_ result: Result<Session, RDMACopyError>) -> String {
        switch result {
        case .success(let session): "\(session)"
        case .failure(let error): "session failed: \(error)"
        }
    }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Push a file into the server's memory by RDMA WRITE.")

    @OptionGroup var options: CopyOptions

    @Argument(help: "The file to send.")
    var file: String

    @Argument(help: "The server's IPv4 or IPv6 address.")
    var host: String

    func run() throws {
        #if RDMA
        try runClient { progress in
            let buffer = try CopyBuffer(contentsOf: file, maxSize: options.maxSize)
            let client = try IBVerbsCopy.client(reaching: host, maxSize: options.maxSize)
            print(try client.push(buffer, to: host, port: options.port, progress: progress.update))
        }
        #else
        throw needsRDMA
        #endif
    }
}

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read the server's file by RDMA READ and write it to OUT.")

    @OptionGroup var options: CopyOptions

    @Argument(help: "The server's IPv4 or IPv6 address.")
    var host: String

    @Argument(help: "Where to write the file.")
    var out: String

    func run() throws {
        #if RDMA
        try runClient { progress in
            let client = try IBVerbsCopy.client(reaching: host, maxSize: options.maxSize)
            let (buffer, report) = try client.fetch(from: host, port: options.port, progress: progress.update)
            try buffer.write(to: out)
            print(report)
        }
        #else
        throw needsRDMA
        #endif
    }
}

/// Runs a client command with a progress line on standard error; a failure becomes one
/// `rdma-copy: …` line there and exit status 1.
func runClient(_ body: (ProgressLine) throws -> Void) throws {
    do {
        try body(ProgressLine())
    } catch {
        writeToStandardError("rdma-copy: \(error)\n")
        throw ExitCode.failure
    }
}
