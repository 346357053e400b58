/// Writes pieces of bytes into room made once at the end of a byte array:
/// a copy per piece, with none of an array's work per append (uniqueness,
/// capacity, the generic copy: 50 to 160 instructions a piece), which made
/// most of the cost of writing a head or a log line. Every piece is checked
/// against the room before it is written.
public struct ByteWriter {
    private var cursor: UnsafeMutableRawPointer
    private let start: UnsafeMutableRawPointer
    private let end: UnsafeMutableRawPointer

    /// Appends `room` bytes to `out`, lets `write` fill them, and keeps what
    /// it wrote. Writing past `room` stops the process (a bound computed
    /// wrong), never memory that is not the array's.
    @inlinable
    public static func append<Result>(
        to out: inout [UInt8], room: Int, _ write: (inout ByteWriter) throws -> Result
    ) rethrows -> Result {
        let offset = out.count
        // Growing as an array grows: an exact reserve would copy what is
        // there for every piece of work.
        if out.capacity - offset < room { out.reserveCapacity(max(out.capacity * 2, offset + room)) }
        // The room, zeroed in copies of a zero block (a repeated element is
        // appended a byte at a time).
        var zeroed = 0
        while zeroed < room {
            let piece = min(room - zeroed, zeros.count)
            out.append(contentsOf: zeros[..<piece])
            zeroed += piece
        }
        let (used, result) = try out.withUnsafeMutableBytes { bytes -> (Int, Result) in
            let base = bytes.baseAddress! + offset
            var writer = ByteWriter(start: base, end: base + room)
            let result = try write(&writer)
            return (writer.count, result)
        }
        out.removeLast(room - used)
        return result
    }

    @usableFromInline
    static let zeros = [UInt8](repeating: 0, count: 4096)

    @usableFromInline
    init(start: UnsafeMutableRawPointer, end: UnsafeMutableRawPointer) {
        self.start = start
        self.cursor = start
        self.end = end
    }

    /// Bytes written so far.
    public var count: Int { start.distance(to: cursor) }

    @inline(__always)
    private mutating func room(for count: Int) -> UnsafeMutableRawPointer {
        precondition(count <= cursor.distance(to: end), "ByteWriter: a piece past the room made for it")
        defer { cursor += count }
        return cursor
    }

    @inline(__always)
    public mutating func put(_ byte: UInt8) {
        room(for: 1).storeBytes(of: byte, as: UInt8.self)
    }

    @inline(__always)
    public mutating func put(literal text: StaticString) {
        room(for: text.utf8CodeUnitCount).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
    }

    @inline(__always)
    public mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        room(for: bytes.count).copyMemory(from: base, byteCount: bytes.count)
    }

    /// `range` of `bytes`.
    @inline(__always)
    public mutating func put(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        put(UnsafeRawBufferPointer(rebasing: bytes[range]))
    }

    public mutating func put(_ text: String) {
        let copied = text.utf8.withContiguousStorageIfAvailable { put(UnsafeRawBufferPointer($0)) }
        if copied == nil {
            for byte in text.utf8 { put(byte) }
        }
    }

    /// A decimal number (at most 20 bytes with its sign).
    public mutating func put(decimal value: Int64) {
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
}
