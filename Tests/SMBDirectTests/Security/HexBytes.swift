/// The bytes a hexadecimal string spells, two digits a byte; spaces are ignored, so
/// vectors can be copied as the documents print them.
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0, "an odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        guard let byte = UInt8(String(digits[index...index + 1]), radix: 16) else {
            preconditionFailure("\(digits[index...index + 1]) is not a hex byte")
        }
        return byte
    }
}
