/// A flat JSON object written on one line, keys sorted, for the `json` log
/// format. Written by hand: Foundation's JSONSerialization is the only reason
/// the daemon would load Foundation (and ICU), and it built a dictionary of
/// `Any` per access-log line.
enum JSONLine {
    enum Value {
        case string(String)
        /// A number already written as JSON (digits, sign, point).
        case number(String)
    }

    static func object(_ fields: [(key: String, value: Value)]) -> String {
        var out = "{"
        for (index, field) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out += "," }
            appendQuoted(field.key, to: &out)
            out += ":"
            switch field.value {
            case .string(let text): appendQuoted(text, to: &out)
            case .number(let digits): out += digits
            }
        }
        out += "}"
        return out
    }

    /// `text` as a JSON string: quote, backslash and control characters
    /// escaped (RFC 8259), everything else as it is, slashes included.
    static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        var plainStart = text.unicodeScalars.startIndex
        for index in text.unicodeScalars.indices {
            let scalar = text.unicodeScalars[index]
            let escaped: String
            switch scalar {
            case "\"": escaped = "\\\""
            case "\\": escaped = "\\\\"
            case "\n": escaped = "\\n"
            case "\r": escaped = "\\r"
            case "\t": escaped = "\\t"
            case "\u{08}": escaped = "\\b"
            case "\u{0C}": escaped = "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16, uppercase: true)
                escaped = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: continue
            }
            out.unicodeScalars.append(contentsOf: text.unicodeScalars[plainStart..<index])
            out += escaped
            plainStart = text.unicodeScalars.index(after: index)
        }
        out.unicodeScalars.append(contentsOf: text.unicodeScalars[plainStart...])
        out += "\""
    }
}
