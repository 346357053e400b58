import Foundation
import PropertyBased
import Testing

@testable import ShuttleModel

@Suite("JSON syntax: where a malformed document first goes wrong")
struct JSONSyntaxTests {
    func error(_ text: String) -> String? { JSONSyntax.firstError(in: Array(text.utf8)) }

    @Test func wellFormedDocumentsHaveNoError() {
        for text in [
            "{}", "[]", " { \"a\" : [1, -2.5e+3, 0, 0.0, 1E9, 1e01, 2.05, true, false, null, \"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"] } ",
            "\"\"", "0", "-0", "null", "[[[[]]]]", "{\"a\":{\"b\":{}}}", "\n[\r\n1\t]\n",
        ] {
            #expect(error(text) == nil, "\(text)")
        }
    }

    @Test func errorsNameTheFaultAndItsLineAndColumn() {
        #expect(error("") == "unexpected end of input at line 1, column 1")
        #expect(error("{") == "unexpected end of input at line 1, column 2")
        #expect(error("{\n  \"services\": [}\n") == "unexpected '}', expected a value at line 2, column 16")
        #expect(error("{\"a\": 1,,}") == "unexpected ',', expected a string key at line 1, column 9")
        #expect(error("{\"a\" 1}") == "unexpected '1', expected ':' at line 1, column 6")
        #expect(error("[1 2]") == "unexpected '2', expected ',' or ']' at line 1, column 4")
        #expect(error("{'fall': 1}") == "unexpected ''', expected a string key at line 1, column 2")
        #expect(error("{\"fall\": +1}") == "unexpected '+', expected a value at line 1, column 10")
        #expect(error("{} x") == "unexpected 'x', expected the end of the document at line 1, column 4")
        #expect(error("[tru]") == "invalid literal (expected true) at line 1, column 5")
        #expect(error("[01]") == "unexpected '1', expected ',' or ']' at line 1, column 3")
        #expect(error("[1.]") == "invalid number at line 1, column 4")
        #expect(error("[\"a\\x\"]") == "invalid escape \\x in a string at line 1, column 5")
        #expect(error("[\"a\\u12G4\"]") == "invalid \\u escape in a string at line 1, column 8")
        #expect(error("[\"a\nb\"]") == "unescaped control character in a string at line 1, column 4")
        #expect(error("[\"abc") == "unterminated string at line 1, column 6")
        #expect(error("[\u{1}]") == "unexpected byte 0x1, expected a value at line 1, column 2")
    }

    @Test("deep nesting is checked without recursion")
    func deepNesting() {
        let depth = 200_000
        #expect(error(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)) == nil)
        #expect(error(String(repeating: "{\"a\":", count: depth))?.hasPrefix("unexpected end of input") == true)
    }

    @Test("agrees with Foundation's parser on which short texts are JSON")
    func agreesWithFoundation() async {
        let pieces = ["{", "}", "[", "]", ":", ",", "\"", "\\", " ", "0", "1", ".", "e", "-", "+", "true", "null", "a", "u", "\"k\""]
        await propertyCheck(count: 3000, input: Gen.int(in: 0...(pieces.count - 1)).array(of: 0...9)) { picks in
            let text = picks.map { pieces[$0] }.joined()
            let foundation = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil
            // Foundation lets a trailing comma pass; RFC 8259 does not.
            let strict = foundation && !Self.hasTrailingComma(text)
            #expect((error(text) == nil) == strict, "\(text)")
        }
    }

    /// A `,` followed (after spaces) by `]` or `}`, outside strings.
    static func hasTrailingComma(_ text: String) -> Bool {
        var inString = false
        var escaped = false
        var afterComma = false
        for c in text {
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            if c == " " { continue }
            if afterComma && (c == "]" || c == "}") { return true }
            afterComma = c == ","
            if c == "\"" { inString = true }
        }
        return false
    }

    @Test("documents Foundation writes are well-formed")
    func foundationOutputIsWellFormed() async {
        let leaves: [Any] = [1, -2.5, 1e300, "tab\t quote\" slash/ é 😀", true, NSNull(), [String: Any](), [Any]()]
        await propertyCheck(count: 300, input: Gen.int(in: 0...(leaves.count - 1)).array(of: 1...12)) { picks in
            var value: Any = leaves[picks[0]]
            for (depth, pick) in picks.dropFirst().enumerated() {
                value = depth % 2 == 0 ? ["k\(pick)": value, "leaf": leaves[pick]] : [value, leaves[pick]]
            }
            let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .prettyPrinted])
            #expect(JSONSyntax.firstError(in: data) == nil, "\(String(decoding: data, as: UTF8.self))")
        }
    }
}
