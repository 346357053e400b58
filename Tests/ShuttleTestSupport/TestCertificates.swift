import Crypto
import Foundation
import X509

/// Self-signed certificates made for a test, written as the `NAME.pem` +
/// `NAME.key` pairs that `-certs` reads.
public struct TestCertificate: Sendable {
    /// The file name without extension.
    public var file: String
    /// The certificate in DER, to compare with what a server presented.
    public var der: [UInt8]
    public var pem: String
    public var keyPEM: String

    /// A certificate for `dnsNames` (its subject alternative names; none
    /// when empty) with `commonName` as its subject.
    public static func make(file: String, commonName: String, dnsNames: [String]) throws -> TestCertificate {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(commonName) }
        let extensions = try Certificate.Extensions {
            if !dnsNames.isEmpty {
                SubjectAlternativeNames(dnsNames.map { GeneralName.dnsName($0) })
            }
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400 * 30, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(key))
        let document = try certificate.serializeAsPEM()
        return TestCertificate(file: file, der: document.derBytes, pem: document.pemString, keyPEM: key.pemRepresentation)
    }

    /// Writes `FILE.pem` and `FILE.key` into `directory`.
    public func write(to directory: URL) throws {
        try pem.write(to: directory.appendingPathComponent(file + ".pem"), atomically: false, encoding: .utf8)
        try keyPEM.write(to: directory.appendingPathComponent(file + ".key"), atomically: false, encoding: .utf8)
    }

    /// Makes and writes a certificate in one go.
    @discardableResult
    public static func write(
        file: String, commonName: String? = nil, dnsNames: [String], to directory: URL
    ) throws -> TestCertificate {
        let certificate = try make(file: file, commonName: commonName ?? dnsNames.first ?? file, dnsNames: dnsNames)
        try certificate.write(to: directory)
        return certificate
    }
}

/// A fresh scratch directory.
public func makeTemporaryDirectory(_ prefix: String = "shuttle-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
