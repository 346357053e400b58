/// Finds where a chunked body ends (RFC 9112 §7.1) as its bytes pass
/// through, a piece at a time: the body is forwarded as it came, so only its
/// framing is read, and a chunk's data is stepped over whole.
///
/// Strict like the head scanner: chunk sizes are hex digits and nothing
/// else (no whitespace before an extension or the line's end), every line
/// ends in CRLF, and a chunk's data is followed by CRLF.
public struct ChunkedBodyScanner {
    private enum State: Equatable {
        /// Before a chunk size's first digit.
        case sizeStart
        case size
        /// In a chunk extension, up to the CR.
        case chunkExtension
        /// After the size line's CR.
        case sizeLF
        case data
        case dataCR
        case dataLF
        /// At the start of a trailer line (after the last chunk's size line).
        case trailerStart
        case trailerName
        case trailerValue
        case trailerLF
        /// After the CR of the empty line that ends the body.
        case endLF
        case done
    }

    public enum Progress: Equatable, Sendable {
        /// Every byte given is the body's; more is to come.
        case more
        /// The body ends after this many of the bytes given.
        case ended(Int)
        case invalid
    }

    private var state = State.sizeStart

    public init() {}
    /// The chunk size being read, then the data left of the chunk.
    private var remaining: UInt64 = 0

    /// Reads `bytes`, which follow those read before.
    public mutating func advance(over bytes: UnsafeRawBufferPointer) -> Progress {
        advance(over: bytes) { _ in }
    }

    /// Reads `bytes`, which follow those read before, and hands `data` the
    /// ranges of them that are chunk data (the body without its framing).
    public mutating func advance(over bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) -> Progress {
        var index = 0
        let count = bytes.count
        while index < count {
            if state == .data {
                let step = Int(min(remaining, UInt64(count - index)))
                if step > 0 { data(index..<(index + step)) }
                index += step
                remaining -= UInt64(step)
                if remaining == 0 { state = .dataCR }
                continue
            }
            let byte = bytes[index]
            index += 1
            switch state {
            case .sizeStart, .size:
                if let digit = Self.hexValue(byte) {
                    // Sizes past 2^60 are refused, not wrapped.
                    guard remaining >> 60 == 0 else { return fail() }
                    remaining = remaining << 4 | UInt64(digit)
                    state = .size
                } else if state == .size && byte == .semicolon {
                    state = .chunkExtension
                } else if state == .size && byte == .cr {
                    state = .sizeLF
                } else {
                    return fail()
                }
            case .chunkExtension:
                if byte == .cr {
                    state = .sizeLF
                } else if !HTTPBytes.isValueByte(byte) {
                    return fail()
                }
            case .sizeLF:
                guard byte == .lf else { return fail() }
                if remaining == 0 {
                    state = .trailerStart
                } else {
                    state = .data
                }
            case .dataCR:
                guard byte == .cr else { return fail() }
                state = .dataLF
            case .dataLF:
                guard byte == .lf else { return fail() }
                remaining = 0
                state = .sizeStart
            case .trailerStart:
                if byte == .cr {
                    state = .endLF
                } else if HTTPBytes.isTokenByte(byte) {
                    state = .trailerName
                } else {
                    return fail()
                }
            case .trailerName:
                if byte == .colon {
                    state = .trailerValue
                } else if !HTTPBytes.isTokenByte(byte) {
                    return fail()
                }
            case .trailerValue:
                if byte == .cr {
                    state = .trailerLF
                } else if !HTTPBytes.isValueByte(byte) {
                    return fail()
                }
            case .trailerLF:
                guard byte == .lf else { return fail() }
                state = .trailerStart
            case .endLF:
                guard byte == .lf else { return fail() }
                state = .done
                return .ended(index)
            case .data, .done:
                return fail()
            }
        }
        return .more
    }

    /// The body has ended.
    public var isDone: Bool { state == .done }

    private mutating func fail() -> Progress {
        state = .done
        return .invalid
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }
}
