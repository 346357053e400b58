import Crypto
import FoundationEssentials
import PropertyBased
import SwiftASN1
import Testing
import X509

@testable import ShuttleRuntime

/// The daemon reads a certificate's names with swift-asn1 alone; the tests
/// hold it to what swift-certificates reads from the same certificates.
@Suite("Certificate names")
struct CertificateNamesTests {
    /// The names as swift-certificates reads them: the dNSName alternative
    /// names, else the subject's common names; lower case.
    static func reference(_ der: [UInt8]) throws -> [String] {
        let parsed = try Certificate(derEncoded: der)
        var names: [String] = []
        if let alternatives = try parsed.extensions.subjectAlternativeNames {
            for name in alternatives {
                if case .dnsName(let dns) = name { names.append(dns.lowercased()) }
            }
        }
        if names.isEmpty {
            for rdn in parsed.subject {
                for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                    names.append("\(attribute.value)".lowercased())
                }
            }
        }
        return names
    }

    static let key = P256.Signing.PrivateKey()

    static func certificate(subject: DistinguishedName, extensions: Certificate.Extensions) throws -> [UInt8] {
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static let hosts = ["a.test", "WWW.Example.COM", "*.wild.test", "xn--bcher-kva.test", "b.test", "localhost"]
    static let alternativeNames: [GeneralName] =
        hosts.map { .dnsName($0) } + [
            .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            .rfc822Name("ops@example.com"),
            .uniformResourceIdentifier("https://uri.test/"),
        ]

    /// One subject attribute: a common name in one of three string types,
    /// or another attribute that must not count.
    static func attribute(_ pick: Int) throws -> RelativeDistinguishedName.Attribute {
        let host = hosts[pick % hosts.count].replacing("*", with: "star")
        switch pick / hosts.count {
        case 0: return .init(type: .RDNAttributeType.commonName, utf8String: host)
        case 1: return try .init(type: .RDNAttributeType.commonName, printableString: host)
        case 2: return try .init(type: .RDNAttributeType.commonName, ia5String: host)
        case 3: return .init(type: .RDNAttributeType.organizationName, utf8String: host)
        default: return try .init(type: .RDNAttributeType.countryName, printableString: "NL")
        }
    }

    @Test("agree with swift-certificates on generated certificates", .timeLimit(.minutes(5)))
    func agreesWithSwiftCertificates() async throws {
        let subjects = Gen.int(in: 0...(Self.hosts.count * 5 - 1)).array(of: 0...4)
        let names = Gen.int(in: 0...(Self.alternativeNames.count - 1)).array(of: 0...5)
        // 0: no alternative names extension; 1: one; 2: also other extensions.
        let shape = Gen.int(in: 0...2)
        await propertyCheck(count: 150, input: subjects, names, shape) { subjectPicks, namePicks, shape in
            let relativeNames: [RelativeDistinguishedName] = try subjectPicks.map {
                RelativeDistinguishedName(try Self.attribute($0))
            }
            let subject = DistinguishedName(relativeNames)
            var extensions = Certificate.Extensions()
            if shape == 2 {
                try extensions.append(Certificate.Extension(BasicConstraints.notCertificateAuthority, critical: true))
                try extensions.append(Certificate.Extension(KeyUsage(digitalSignature: true), critical: false))
            }
            if shape > 0 {
                let alternatives = SubjectAlternativeNames(namePicks.map { Self.alternativeNames[$0] })
                try extensions.append(Certificate.Extension(alternatives, critical: false))
            }
            let der = try Self.certificate(subject: subject, extensions: extensions)
            let expected = try Self.reference(der)
            #expect(try CertificateNames.of(der: der) == expected, "subject \(subjectPicks), names \(namePicks), shape \(shape)")
        }
    }

    @Test("several common names in one relative name all count, in order")
    func severalCommonNames() throws {
        let subject = DistinguishedName([
            RelativeDistinguishedName([
                .init(type: .RDNAttributeType.commonName, utf8String: "One.test"),
                .init(type: .RDNAttributeType.commonName, utf8String: "two.test"),
            ])
        ])
        let der = try Self.certificate(subject: subject, extensions: Certificate.Extensions())
        #expect(try CertificateNames.of(der: der) == ["one.test", "two.test"])
        #expect(try CertificateNames.of(der: der).sorted() == (try Self.reference(der)).sorted())
    }

    @Test("a certificate's test fixture names read back")
    func fixtureNames() throws {
        let certificate = try TestCertificateFixture.make()
        #expect(try CertificateNames.of(der: certificate) == ["app.test", "*.app.test"])
    }

    @Test("damaged encodings are errors, not crashes")
    func damagedEncodings() async throws {
        let der = try TestCertificateFixture.make()
        #expect(throws: (any Error).self) { try CertificateNames.of(der: []) }
        #expect(throws: (any Error).self) { try CertificateNames.of(der: Array(der.prefix(der.count / 2))) }
        // Any single byte changed either still parses or throws.
        await propertyCheck(count: 400, input: Gen.int(in: 0...(der.count - 1)), Gen.int(in: 0...255)) { index, byte in
            var damaged = der
            damaged[index] = UInt8(byte)
            _ = try? CertificateNames.of(der: damaged)
        }
    }
}

/// A certificate with two alternative names and a different common name.
enum TestCertificateFixture {
    static func make() throws -> [UInt8] {
        let subject = try DistinguishedName { CommonName("ignored.test") }
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames([.dnsName("App.test"), .ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 1])), .dnsName("*.app.test")])
        }
        return try CertificateNamesTests.certificate(subject: subject, extensions: extensions)
    }
}
