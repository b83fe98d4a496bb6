// The end-to-end suite that runs on a real RDMA device or soft-RoCE (rxe):
//     Scripts/rxe/run-e2e --perf .build-rxe/release/rdma-e2e
// It needs libibverbs, so it does its work only when built with `--traits RDMA`.
//
// Every scenario runs on SoftVerbs and on the libibverbs device, and the two must
// agree: 1 MiB SEND/RECV, RDMA WRITE and RDMA READ for every iterator kind, the error
// cases, the MR cache over real registration (and the time of a hit against a
// registration), a connection through rdma_cm, fork safety, and RDMA WRITE throughput. Prints PASS:/FAIL: lines and `N passed, N failed`;
// exits 1 on any failure.
//
// Options: --volume-mib N (throughput volume, default 64), --reference-log PATH
// (ib_write_bw client output, default /tmp/bw-client.log).
// Environment (set by the harness): E2E_RDMA_DEVICE, E2E_GID_INDEX, E2E_RDMA_IP.
//
// Between two machines (Scripts/rxe/run-pair): `rdma-e2e pair-server` on one (it
// listens on [::]:20886 and serves until the client says done), `rdma-e2e
// pair-client HOST4 HOST6 [--volume-mib N]` on the other: every operation for every
// iterator kind, IPv4 and IPv6, a rejection, the server going away mid-stream, 8
// concurrent connections and RDMA WRITE throughput (PAIR_WRITE_BW). Each prints
// PASS:/FAIL: lines and `N passed, N failed`.
#if RDMA
import Glibc

func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let at = arguments.firstIndex(of: name), at + 1 < arguments.count else { return nil }
    return arguments[at + 1]
}

let arguments = CommandLine.arguments
let volume = (option("--volume-mib").flatMap { Int($0) } ?? 64) << 20
do {
    switch arguments.dropFirst().first {
    case "pair-server":
        try PairServer(deviceName: environment("E2E_RDMA_DEVICE")).run()
    case "pair-client":
        guard arguments.count >= 4 else { throw Failure("usage: rdma-e2e pair-client HOST4 HOST6 [--volume-mib N]") }
        try PairClient(host4: arguments[2], host6: arguments[3], volume: volume).run()
    default:
        try Suite(deviceName: environment("E2E_RDMA_DEVICE"), gidIndex: environment("E2E_GID_INDEX").flatMap { Int($0) },
                  address: environment("E2E_RDMA_IP"), volume: volume,
                  referenceLog: option("--reference-log") ?? "/tmp/bw-client.log").run()
    }
} catch {
    Report.say("FAIL: setting up: \(error)")
    Report.say("0 passed, 1 failed")
    exit(1)
}
#else
print("rdma-e2e needs the RDMA trait: swift build -c release --traits RDMA --product rdma-e2e")
print("0 passed, 0 failed, 1 skipped")
#endif
