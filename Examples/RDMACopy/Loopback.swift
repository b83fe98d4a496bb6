import ArgumentParser
import RDMASGE
import SoftVerbs
import TestKit

struct Loopback: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push FILE and fetch it back in this process, over SoftVerbs (no RDMA device needed).")

    @OptionGroup var options: CopyOptions

    @Argument(help: "The file to copy.")
    var file: String

    func run() throws {
        let buffer = try CopyBuffer(contentsOf: file, maxSize: options.maxSize)
        let device = SoftVerbs()
        let domain = try device.allocateProtectionDomain()
        let listener = try SoftListener(device: device, host: "127.0.0.1", port: options.port)
        let server = CopyServer(listener: listener, domain: domain,
                                configuration: .init(maxSize: options.maxSize, file: buffer))
        print("server: listening on 127.0.0.1 port \(listener.port) (SoftVerbs), fetch exposes \(file)")
        let serving = JoinableThread { _ = server.serve(sessions: 2) { print("server: " + Serve.line($0)) } }
        defer { serving.join() }
        let client = CopyClient<SoftConnection, SoftProtectionDomain>(
            cache: MRCache(domain: domain, access: .localWrite), maxSize: options.maxSize)
        print("client: " + "\(try client.push(buffer, to: "127.0.0.1", port: listener.port, progress: ProgressLine().update))")
        let (copy, report) = try client.fetch(from: "127.0.0.1", port: listener.port, progress: ProgressLine().update)
        print("client: \(report)")
        guard copy.hasSameBytes(as: buffer) else { throw ValidationError("the fetched copy differs from \(file)") }
        print("client: the fetched copy equals \(file) byte for byte; MR cache: \(client.cache.referenceCount) references, "
              + "\(client.cache.regionCount) regions; \(client.ledger.pinnedPageCount) pages pinned")
    }
}
