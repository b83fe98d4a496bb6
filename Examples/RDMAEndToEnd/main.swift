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
#if RDMA
import Glibc

func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let at = arguments.firstIndex(of: name), at + 1 < arguments.count else { return nil }
    return arguments[at + 1]
}

do {
    let suite = try Suite(deviceName: environment("E2E_RDMA_DEVICE"), gidIndex: environment("E2E_GID_INDEX").flatMap { Int($0) },
                          address: environment("E2E_RDMA_IP"), volume: (option("--volume-mib").flatMap { Int($0) } ?? 64) << 20,
                          referenceLog: option("--reference-log") ?? "/tmp/bw-client.log")
    suite.run()
} catch {
    Report.say("FAIL: setting up the device: \(error)")
    Report.say("0 passed, 1 failed")
    exit(1)
}
#else
print("rdma-e2e needs the RDMA trait: swift build -c release --traits RDMA --product rdma-e2e")
print("0 passed, 0 failed, 1 skipped")
#endif
