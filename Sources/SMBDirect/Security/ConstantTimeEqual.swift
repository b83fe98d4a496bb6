/// Whether `a` and `b` hold the same bytes, in a time that depends on their lengths only:
/// how signatures, proofs and MICs from a peer are compared, so that the time taken does
/// not tell where a forgery first differs.
func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}
