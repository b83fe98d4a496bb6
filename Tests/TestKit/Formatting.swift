/// `value` with `digits` digits after the point, for the example programs' reports (no
/// Foundation in them).
public func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale), fraction = Int(scaled) - whole * Int(scale)
    let text = String(fraction)
    return (value < 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + String(repeating: "0", count: digits - text.count) + text : "")
}
