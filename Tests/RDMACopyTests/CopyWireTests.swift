import RDMACopy
import Testing

/// The private data both ways, as rdma_cm delivers it over InfiniBand and RoCE (padded
/// with zeros), and hostile variations of it.
@Suite struct CopyWireTests {
    private func padded(_ bytes: [UInt8], to size: Int) -> [UInt8] { bytes + Array(repeating: 0, count: size - bytes.count) }

    @Test func requestsSurvivePaddingAndHostileOnesNameTheirReason() throws {
        let request = CopyRequest(operation: .push, length: 5000, isLastSession: true)
        #expect(try CopyRequest(parsing: padded(request.privateData, to: 56), maxSize: 5000) == request)
        var bytes = request.privateData
        bytes[4] = 2
        #expect(throws: CopyRejection(.unsupportedVersion)) { try CopyRequest(parsing: bytes, maxSize: 1 << 30) }
        bytes = request.privateData
        bytes[5] = 9
        #expect(throws: CopyRejection(.unknownOperation)) { try CopyRequest(parsing: bytes, maxSize: 1 << 30) }
        #expect(throws: CopyRejection(.badMagic)) { try CopyRequest(parsing: Array(request.privateData.prefix(15)), maxSize: 1 << 30) }
        #expect(throws: CopyRejection(.tooLarge, limit: 4999)) { try CopyRequest(parsing: request.privateData, maxSize: 4999) }
        #expect(throws: CopyRejection(.empty)) {
            try CopyRequest(parsing: CopyRequest(operation: .push, length: 0).privateData, maxSize: 1 << 30)
        }
    }

    @Test func offersAreCheckedByTheClient() throws {
        let fetch = CopyRequest(operation: .fetch, length: 0)
        let offer = CopyOffer(operation: .fetch, address: 0x7f00_0000_1000, rkey: 0x1234, length: 4096)
        #expect(try CopyOffer(parsing: padded(offer.privateData, to: 196), for: fetch, maxSize: 4096) == offer)
        #expect(throws: RDMACopyError.self, "more than the client takes") {
            try CopyOffer(parsing: offer.privateData, for: fetch, maxSize: 4095)
        }
        #expect(throws: RDMACopyError.self, "a buffer that wraps") {
            try CopyOffer(parsing: CopyOffer(operation: .fetch, address: .max - 100, rkey: 1, length: 4096).privateData,
                          for: fetch, maxSize: 1 << 30)
        }
        #expect(throws: RDMACopyError.self, "another length than the push's") {
            try CopyOffer(parsing: CopyOffer(operation: .push, address: 0x1000, rkey: 1, length: 4096).privateData,
                          for: CopyRequest(operation: .push, length: 4097), maxSize: 1 << 30)
        }
        #expect(throws: RDMACopyError.self, "another operation") {
            try CopyOffer(parsing: offer.privateData, for: CopyRequest(operation: .push, length: 4096), maxSize: 1 << 30)
        }
        #expect(throws: RDMACopyError.self, "no magic") { try CopyOffer(parsing: padded([], to: 196), for: fetch, maxSize: 1 << 30) }
    }

    @Test func rejectionsCarryTheirReasonAndZerosMeanNoListener() throws {
        let rejection = CopyRejection(.tooLarge, limit: 1 << 30)
        #expect(try CopyRejection(parsing: padded(rejection.privateData, to: 148)) == rejection)
        #expect(try CopyRejection(parsing: padded([], to: 148)) == nil)
        #expect(try CopyRejection(parsing: []) == nil)
        var unknown = rejection.privateData
        unknown[5] = 200
        #expect(throws: RDMACopyError.self) { try CopyRejection(parsing: unknown) }
    }
}
