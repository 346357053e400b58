/// Where a JSON text first breaks the grammar (RFC 8259), for the
/// "malformed JSON" problem: JSONDecoder says only that the data is not valid
/// JSON, and a user wants the line and column.
///
/// A checker only: it builds no values. It walks the text with an explicit
/// stack of open containers, so no nesting depth can exhaust the thread's
/// stack.
enum JSONSyntax {
    /// nil when the text is well-formed, else what is wrong and where, like
    /// "unexpected '}' at line 3, column 7".
    static func firstError(in text: some Collection<UInt8>) -> String? {
        let bytes = Array(text)
        var scanner = Scanner(bytes: bytes)
        guard let offset = scanner.firstErrorOffset() else { return nil }
        return "\(scanner.problem) at \(position(of: offset, in: bytes))"
    }

    /// "line L, column C", both from 1, the column in bytes.
    static func position(of offset: Int, in bytes: [UInt8]) -> String {
        var line = 1
        var lineStart = 0
        for index in 0..<min(offset, bytes.count) where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return "line \(line), column \(offset - lineStart + 1)"
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var problem = ""

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// What the grammar allows next.
        private enum Expect {
            case value, valueOrClose, key, keyOrClose, colon, separatorOrClose
        }

        mutating func firstErrorOffset() -> Int? {
            var open: [UInt8] = []  // "{" or "[" for each open container
            var expect = Expect.value
            while true {
                skipWhitespace()
                guard index < bytes.count else {
                    if open.isEmpty && expect == .separatorOrClose { return nil }
                    problem = "unexpected end of input"
                    return index
                }
                let byte = bytes[index]
                switch expect {
                case .value, .valueOrClose:
                    if expect == .valueOrClose && byte == UInt8(ascii: "]") {
                        open.removeLast()
                        index += 1
                        expect = .separatorOrClose
                    } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                        open.append(byte)
                        index += 1
                        expect = byte == UInt8(ascii: "{") ? .keyOrClose : .valueOrClose
                    } else {
                        guard scanScalar() else { return index }
                        expect = .separatorOrClose
                    }
                case .key, .keyOrClose:
                    if expect == .keyOrClose && byte == UInt8(ascii: "}") {
                        open.removeLast()
                        index += 1
                        expect = .separatorOrClose
                    } else {
                        guard byte == UInt8(ascii: "\"") else { return unexpected("a string key") }
                        guard scanString() else { return index }
                        expect = .colon
                    }
                case .colon:
                    guard byte == UInt8(ascii: ":") else { return unexpected("':'") }
                    index += 1
                    expect = .value
                case .separatorOrClose:
                    guard let container = open.last else { return unexpected("the end of the document") }
                    let close = container == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                    if byte == UInt8(ascii: ",") {
                        index += 1
                        expect = container == UInt8(ascii: "{") ? .key : .value
                    } else if byte == close {
                        open.removeLast()
                        index += 1
                    } else {
                        return unexpected("',' or '\(Character(Unicode.Scalar(close)))'")
                    }
                }
            }
        }

        private mutating func unexpected(_ wanted: String) -> Int {
            problem = "unexpected \(Self.describe(bytes[index])), expected \(wanted)"
            return index
        }

        private static func describe(_ byte: UInt8) -> String {
            (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }

        private mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// A string, number or literal at `index`; false (with `problem`
        /// set and `index` at the fault) when it is not one.
        private mutating func scanScalar() -> Bool {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return scanString() }
            if byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { return scanNumber() }
            for literal in ["true", "false", "null"] where literal.utf8.first == byte {
                for expected in literal.utf8 {
                    guard index < bytes.count, bytes[index] == expected else {
                        problem = index < bytes.count ? "invalid literal (expected \(literal))" : "unexpected end of input"
                        return false
                    }
                    index += 1
                }
                return true
            }
            _ = unexpected("a value")
            return false
        }

        private mutating func scanString() -> Bool {
            index += 1  // the opening quote
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return true
                case UInt8(ascii: "\\"):
                    index += 1
                    guard index < bytes.count else { break }
                    let escape = bytes[index]
                    if escape == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            index += 1
                            guard index < bytes.count else { break }
                            guard isHexDigit(bytes[index]) else {
                                problem = "invalid \\u escape in a string"
                                return false
                            }
                        }
                    } else if !Array("\"\\/bfnrt".utf8).contains(escape) {
                        problem = "invalid escape \\\(Character(Unicode.Scalar(escape))) in a string"
                        return false
                    }
                    index += 1
                case 0x00..<0x20:
                    problem = "unescaped control character in a string"
                    return false
                default:
                    index += 1
                }
            }
            problem = "unterminated string"
            return false
        }

        private mutating func scanNumber() -> Bool {
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(leadingZeroEnds: true) > 0 else { return invalidNumber() }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard digits(leadingZeroEnds: false) > 0 else { return invalidNumber() }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits(leadingZeroEnds: false) > 0 else { return invalidNumber() }
            }
            return true
        }

        /// Digits at `index`, counted. In an integer part a leading zero
        /// takes no more (`01` is not a number); fractions and exponents may
        /// start with zeros.
        private mutating func digits(leadingZeroEnds: Bool) -> Int {
            let start = index
            if leadingZeroEnds, index < bytes.count, bytes[index] == UInt8(ascii: "0") {
                index += 1
                return 1
            }
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }

        private mutating func invalidNumber() -> Bool {
            problem = "invalid number"
            return false
        }

        private func isHexDigit(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
            default: false
            }
        }
    }
}
