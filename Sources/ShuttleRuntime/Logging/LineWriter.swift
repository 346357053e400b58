/// Writes a log line's pieces into room already made at the end of a byte
/// array: a copy per piece, with none of an array's checks per append
/// (uniqueness, capacity, the generic copy), which made most of an access
/// line's cost.
struct LineWriter {
    private var cursor: UnsafeMutableRawPointer
    private let start: UnsafeMutableRawPointer

    /// Appends `room` bytes to `out`, lets `write` fill them, and keeps what
    /// it wrote. `room` must be at least what `write` writes.
    static func append(to out: inout [UInt8], room: Int, _ write: (inout LineWriter) -> Void) {
        let offset = out.count
        out.append(contentsOf: repeatElement(0, count: room))
        let used = out.withUnsafeMutableBytes { bytes -> Int in
            var writer = LineWriter(start: bytes.baseAddress! + offset)
            write(&writer)
            return writer.count
        }
        precondition(used <= room, "a log line overran its room")
        out.removeLast(room - used)
    }

    private init(start: UnsafeMutableRawPointer) {
        self.start = start
        self.cursor = start
    }

    var count: Int { start.distance(to: cursor) }

    @inline(__always)
    mutating func put(_ byte: UInt8) {
        cursor.storeBytes(of: byte, as: UInt8.self)
        cursor += 1
    }

    @inline(__always)
    mutating func put(literal text: StaticString) {
        cursor.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        cursor += text.utf8CodeUnitCount
    }

    mutating func put(_ text: String) {
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            if let base = bytes.baseAddress { cursor.copyMemory(from: base, byteCount: bytes.count) }
            cursor += bytes.count
            return true
        }
        if copied == nil {
            for byte in text.utf8 { put(byte) }
        }
    }

    /// A decimal number (at most 20 digits and a sign).
    mutating func put(decimal value: Int64) {
        if value < 0 { put(UInt8(ascii: "-")) }
        var rest = value.magnitude
        var scale: UInt64 = 1
        while scale <= rest / 10 { scale *= 10 }
        while scale > 0 {
            put(UInt8(48 + rest / scale))
            rest %= scale
            scale /= 10
        }
    }

    /// Seconds with six decimals (as `%.6f`).
    mutating func put(seconds value: Double) {
        let micros = Int64((max(0, value) * 1e6).rounded())
        put(decimal: micros / 1_000_000)
        put(UInt8(ascii: "."))
        var digits = micros % 1_000_000
        var scale: Int64 = 100_000
        for _ in 0..<6 {
            put(UInt8(48 + digits / scale))
            digits %= scale
            scale /= 10
        }
    }
}
