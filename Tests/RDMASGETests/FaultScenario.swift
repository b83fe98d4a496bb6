import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing
import SoftVerbs

/// How the bytes travel.
enum FaultPath: String, CaseIterable, Sendable {
    /// SEND into receives posted over the peer's buffer.
    case sendReceive
    /// RDMA WRITE into the peer's region.
    case rdmaWrite
    /// RDMA READ from the peer's region into the iterator's memory.
    case rdmaRead
}

/// Who answers the extraction's key lookups.
enum FaultResolver: String, CaseIterable, Sendable {
    /// An MR cache that registers on demand (and counts references).
    case mrCache
    /// The local memory registered once as one region.
    case singleKey
}

/// The fault, by the class of operation it counts.
enum FaultKind: String, CaseIterable, Sendable {
    /// `SoftVerbsFault.registration(nth:)`: counts memory registrations.
    case registration
    /// `SoftVerbsFault.post(nth:)`: counts posts, receives and sends alike.
    case post
    /// `SoftVerbsFault.completion(nth:status:)`: counts executed sends.
    case completion
    /// The requester's queue pair is moved to the error state just before its Nth send is posted.
    case requesterQueuePairError
    /// The responder's queue pair is moved to the error state just before the Nth send is posted.
    case responderQueuePairError
}

/// Where, among the operations the fault counts, it strikes.
enum FaultPosition: String, CaseIterable, Sendable {
    case first, middle, last

    /// N for a fault class with `count` operations in the baseline.
    func nth(of count: Int) -> Int {
        switch self {
        case .first: 1
        case .middle: (count + 1) / 2
        case .last: count
        }
    }

    /// The non-success status an injected completion fault reports (varied across the matrix).
    var completionStatus: WorkCompletionStatus {
        switch self {
        case .first: .retryExceededError
        case .middle: .remoteAccessError
        case .last: .localProtectionError
        }
    }
}

struct FaultScenario: Sendable, CustomTestStringConvertible {
    var path: FaultPath
    var kind: IOIteratorKind
    var resolver: FaultResolver
    var fault: FaultKind
    var position: FaultPosition

    var testDescription: String { "\(path) \(kind) \(resolver) \(fault)@\(position)" }

    /// user-backed (pinned) IOVEC, non-user KVEC over the same memory, non-user BVEC.
    static let kinds: [IOIteratorKind] = [.iovec, .kvec, .bvec]

    /// The whole matrix: path × iterator × resolver × fault × position.
    static let all: [FaultScenario] = FaultPath.allCases.flatMap { path in
        kinds.flatMap { kind in
            FaultResolver.allCases.flatMap { resolver in
                FaultKind.allCases.flatMap { fault in
                    FaultPosition.allCases.map { FaultScenario(path: path, kind: kind, resolver: resolver, fault: fault, position: $0) }
                }
            }
        }
    }
}
