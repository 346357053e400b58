import SwiftASN1

/// The DNS names a certificate answers for: its subject alternative names
/// of type dNSName, else its subject's common names; lower case.
///
/// Only those two fields of the certificate are read (RFC 5280, 4.1 and
/// 4.2.1.6), with swift-asn1 doing the DER. BoringSSL has already parsed
/// and accepted the certificate when this runs. The daemon used to carry
/// swift-certificates for this, and with it swift-crypto's second copy of
/// BoringSSL: 4 MB more code, nearly all of it resident (the kernel maps a
/// binary's code in large folios), for two fields.
enum CertificateNames {
    enum Problem: Error, CustomStringConvertible {
        case missingField(String)
        var description: String {
            switch self {
            case .missingField(let field): return "certificate has no \(field)"
            }
        }
    }

    static let commonName: ASN1ObjectIdentifier = [2, 5, 4, 3]
    static let subjectAlternativeName: ASN1ObjectIdentifier = [2, 5, 29, 17]
    /// GeneralName's `dNSName [2] IA5String` (implicitly tagged).
    static let dnsNameTag = ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)

    /// The names in the DER encoding of a certificate.
    static func of(der: [UInt8]) throws -> [String] {
        let certificate = try DER.parse(der)
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        let toBeSigned = try DER.sequence(certificate, identifier: .sequence) { fields in
            guard let toBeSigned = fields.next() else { throw Problem.missingField("tbsCertificate") }
            while fields.next() != nil {}
            return toBeSigned
        }
        var dnsNames: [String] = []
        var commonNames: [String] = []
        try DER.sequence(toBeSigned, identifier: .sequence) { fields in
            // version [0] EXPLICIT (optional), serialNumber, signature,
            // issuer, validity, subject, subjectPublicKeyInfo.
            _ = try DER.optionalExplicitlyTagged(&fields, tagNumber: 0, tagClass: .contextSpecific) { $0 }
            for field in ["serialNumber", "signature", "issuer", "validity"] {
                guard fields.next() != nil else { throw Problem.missingField(field) }
            }
            guard let subject = fields.next() else { throw Problem.missingField("subject") }
            commonNames = try Self.commonNames(in: subject)
            guard fields.next() != nil else { throw Problem.missingField("subjectPublicKeyInfo") }
            // issuerUniqueID [1], subjectUniqueID [2], extensions [3] EXPLICIT.
            while let field = fields.next() {
                guard field.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific),
                    case .constructed(let wrapped) = field.content
                else { continue }
                for extensions in wrapped {
                    dnsNames += try Self.dnsNames(inExtensions: extensions)
                }
            }
        }
        return (dnsNames.isEmpty ? commonNames : dnsNames).map { $0.lowercased() }
    }

    /// Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }
    static func commonNames(in subject: ASN1Node) throws -> [String] {
        var names: [String] = []
        try DER.sequence(subject, identifier: .sequence) { distinguishedNames in
            while let relative = distinguishedNames.next() {
                guard relative.identifier == .set, case .constructed(let attributes) = relative.content else {
                    throw ASN1Error.unexpectedFieldType(relative.identifier)
                }
                for attribute in attributes {
                    try DER.sequence(attribute, identifier: .sequence) { pair in
                        guard let type = pair.next(), let value = pair.next() else {
                            throw Problem.missingField("attribute type and value")
                        }
                        if try ASN1ObjectIdentifier(derEncoded: type) == commonName, let text = try text(of: value) {
                            names.append(text)
                        }
                    }
                }
            }
        }
        return names
    }

    /// Extensions ::= SEQUENCE OF SEQUENCE { extnID OID, critical BOOLEAN
    /// DEFAULT FALSE, extnValue OCTET STRING }; the subject alternative
    /// names' value is GeneralNames ::= SEQUENCE OF GeneralName.
    static func dnsNames(inExtensions extensions: ASN1Node) throws -> [String] {
        var names: [String] = []
        try DER.sequence(extensions, identifier: .sequence) { list in
            while let item = list.next() {
                try DER.sequence(item, identifier: .sequence) { parts in
                    guard let id = parts.next() else { throw Problem.missingField("extension id") }
                    var value = parts.next()
                    if value?.identifier == .boolean { value = parts.next() }
                    guard let value else { throw Problem.missingField("extension value") }
                    guard try ASN1ObjectIdentifier(derEncoded: id) == subjectAlternativeName else { return }
                    let octets = try ASN1OctetString(derEncoded: value)
                    try DER.sequence(try DER.parse(octets.bytes), identifier: .sequence) { generalNames in
                        while let name = generalNames.next() {
                            guard name.identifier == dnsNameTag, case .primitive(let bytes) = name.content else { continue }
                            names.append(String(decoding: bytes, as: UTF8.self))
                        }
                    }
                }
            }
        }
        return names
    }

    /// The text of a directory string (nil for a value of another type).
    static func text(of value: ASN1Node) throws -> String? {
        switch value.identifier {
        case .utf8String, .printableString, .ia5String, .teletexString, .visibleString:
            guard case .primitive(let bytes) = value.content else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        case .bmpString:
            let bytes = try ASN1BMPString(derEncoded: value).bytes
            let units = stride(from: bytes.startIndex, to: bytes.endIndex - 1, by: 2).map {
                UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1])
            }
            return String(decoding: units, as: UTF16.self)
        case .universalString:
            let bytes = try ASN1UniversalString(derEncoded: value).bytes
            let scalars = stride(from: bytes.startIndex, to: bytes.endIndex - 3, by: 4).compactMap {
                Unicode.Scalar(bytes[$0 ..< $0 + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            }
            return String(String.UnicodeScalarView(scalars))
        default:
            return nil
        }
    }
}
