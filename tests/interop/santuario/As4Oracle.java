// An Apache Santuario oracle for the oots AS4 tests (compiled at test time, never shipped).
//
//   java As4Oracle verify  DIR [KEY.pk8]            DIR holds envelope.xml and parts/<hex(content id)>
//   java As4Oracle produce DIR SIGN.pk8 SIGN.der RECIPIENT.der
//                                                   DIR holds template.xml (unsigned envelope) and parts/
//   java As4Oracle bench DIR SIGN.pk8 SIGN.der RECIPIENT.pk8 RECIPIENT.der N
//                                                   CPU time per message of produce + verify (bench/bench_as4.py)
//
// "verify" decrypts the SwA parts (EncryptedKey unwrapped by XMLCipher, AES-GCM by JCE), then checks
// the signature with XMLSignature, a TransformSpi for the SwA Attachment-Content-Signature-Transform and
// a cid: ResourceResolverSpi. "produce" signs eb:Messaging, the Body and every part with XMLSignature,
// encrypts the parts with AES-128-GCM and wraps the key with XMLCipher (RSA-OAEP, MGF1-SHA256).
import java.io.*;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.*;
import javax.crypto.*;
import javax.crypto.spec.*;
import javax.xml.parsers.*;
import org.apache.xml.security.Init;
import org.apache.xml.security.algorithms.MessageDigestAlgorithm;
import org.apache.xml.security.encryption.*;
import org.apache.xml.security.signature.*;
import org.apache.xml.security.transforms.Transform;
import org.apache.xml.security.transforms.TransformSpi;
import org.apache.xml.security.transforms.Transforms;
import org.apache.xml.security.utils.EncryptionConstants;
import org.apache.xml.security.utils.XMLUtils;
import org.apache.xml.security.utils.resolver.*;
import org.w3c.dom.*;

public class As4Oracle {
    static final String WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    static final String WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    static final String WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd";
    static final String DS = "http://www.w3.org/2000/09/xmldsig#";
    static final String XENC = "http://www.w3.org/2001/04/xmlenc#";
    static final String S12 = "http://www.w3.org/2003/05/soap-envelope";
    static final String EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/";
    static final String SWA = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#";
    static final String X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
    static final String B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

    /** The SwA content signature transform: the part's octets, unchanged. */
    public static class SwaContentTransform extends TransformSpi {
        @Override protected String engineGetURI() { return SWA + "Attachment-Content-Signature-Transform"; }
        @Override protected XMLSignatureInput enginePerformTransform(XMLSignatureInput input, OutputStream os, Transform t)
                throws IOException, org.apache.xml.security.c14n.CanonicalizationException {
            return new XMLSignatureInput(input.getBytes());
        }
    }

    /** Resolves cid: URIs to the message's MIME parts. */
    static class CidResolver extends ResourceResolverSpi {
        final Map<String, byte[]> parts;
        CidResolver(Map<String, byte[]> parts) { this.parts = parts; }
        @Override public boolean engineCanResolveURI(ResourceResolverContext c) {
            return c.uriToResolve != null && c.uriToResolve.startsWith("cid:");
        }
        @Override public XMLSignatureInput engineResolveURI(ResourceResolverContext c) throws ResourceResolverException {
            String id;
            try { id = URLDecoder.decode(c.uriToResolve.substring(4), "UTF-8"); }
            catch (UnsupportedEncodingException e) { throw new RuntimeException(e); }
            byte[] data = parts.get(id);
            if (data == null) throw new ResourceResolverException("no MIME part " + id, c.uriToResolve, c.baseUri);
            XMLSignatureInput in = new XMLSignatureInput(data);
            in.setSourceURI(c.uriToResolve);
            return in;
        }
    }

    static String hex(String s) {
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) b.append(String.format("%02x", x));
        return b.toString();
    }

    static String unhex(String s) {
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return new String(out, StandardCharsets.UTF_8);
    }

    static String sha256(byte[] data) throws Exception {
        return Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-256").digest(data));
    }

    static DocumentBuilder builder;

    static Document parse(byte[] data) throws Exception {
        if (builder == null) {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setNamespaceAware(true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            builder = f.newDocumentBuilder();
        }
        Document doc = builder.parse(new ByteArrayInputStream(data));
        NodeList all = doc.getElementsByTagName("*");
        for (int i = 0; i < all.getLength(); i++) {
            Element e = (Element) all.item(i);
            if (e.hasAttributeNS(WSU, "Id")) e.setIdAttributeNS(WSU, "Id", true);
            if (e.hasAttribute("Id")) e.setIdAttribute("Id", true);
        }
        return doc;
    }

    static Map<String, byte[]> readParts(Path dir) throws IOException {
        Map<String, byte[]> parts = new LinkedHashMap<>();
        Path p = dir.resolve("parts");
        if (Files.isDirectory(p)) {
            try (DirectoryStream<Path> s = Files.newDirectoryStream(p)) {
                for (Path f : s) parts.put(unhex(f.getFileName().toString()), Files.readAllBytes(f));
            }
        }
        return parts;
    }

    static Element first(Node root, String ns, String local) {
        NodeList l = root instanceof Document ? ((Document) root).getElementsByTagNameNS(ns, local)
                                              : ((Element) root).getElementsByTagNameNS(ns, local);
        return l.getLength() == 0 ? null : (Element) l.item(0);
    }

    static Element byRef(Document doc, Element str) {
        Element ref = first(str, WSSE, "Reference");
        return doc.getElementById(ref.getAttribute("URI").substring(1));
    }

    static PrivateKey privateKey(Path file) throws Exception {
        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(file)));
    }

    static X509Certificate certificate(byte[] der) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
    }

    static int verify(Path dir, Path keyFile) throws Exception {
        boolean valid = verifyBytes(Files.readAllBytes(dir.resolve("envelope.xml")), readParts(dir),
                keyFile == null ? null : privateKey(keyFile), true);
        return valid ? 0 : 1;
    }

    static boolean verifyBytes(byte[] envelope, Map<String, byte[]> wireParts, PrivateKey key, boolean print)
            throws Exception {
        Document doc = parse(envelope);
        Map<String, byte[]> parts = new HashMap<>(wireParts);
        if (key != null) {
            NodeList eds = doc.getElementsByTagNameNS(XENC, "EncryptedData");
            for (int i = 0; i < eds.getLength(); i++) {
                Element ed = (Element) eds.item(i);
                String cid = URLDecoder.decode(first(ed, XENC, "CipherReference").getAttribute("URI").substring(4), "UTF-8");
                Element ekEl = byRef(doc, first(first(ed, DS, "KeyInfo"), WSSE, "SecurityTokenReference"));
                XMLCipher kc = XMLCipher.getInstance();
                kc.init(XMLCipher.UNWRAP_MODE, key);
                EncryptedKey ek = kc.loadEncryptedKey(doc, ekEl);
                String algorithm = first(ed, XENC, "EncryptionMethod").getAttribute("Algorithm");
                Key cek = kc.decryptKey(ek, algorithm);
                byte[] wire = parts.get(cid);
                Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
                gcm.init(Cipher.DECRYPT_MODE, new SecretKeySpec(cek.getEncoded(), "AES"), new GCMParameterSpec(128, wire, 0, 12));
                byte[] plain = gcm.doFinal(wire, 12, wire.length - 12);
                parts.put(cid, plain);
                if (print) System.out.println("DECRYPTED " + cid + " " + sha256(plain));
            }
        }
        Element sigEl = first(doc, DS, "Signature");
        XMLSignature sig = new XMLSignature(sigEl, "", true);
        sig.addResourceResolver(new CidResolver(parts));
        Element bst = byRef(doc, first(first(sigEl, DS, "KeyInfo"), WSSE, "SecurityTokenReference"));
        X509Certificate cert = certificate(Base64.getMimeDecoder().decode(bst.getTextContent()));
        boolean valid = sig.checkSignatureValue(cert);
        if (print) {
            SignedInfo si = sig.getSignedInfo();
            for (int i = 0; i < si.getLength(); i++) {
                System.out.println("REFERENCE " + si.item(i).getURI() + " " + (si.getVerificationResult(i) ? "OK" : "FAILED"));
            }
            System.out.println(valid ? "SIGNATURE VALID" : "SIGNATURE INVALID");
        }
        return valid;
    }

    static Element bst(Document doc, byte[] der, String id) {
        Element e = doc.createElementNS(WSSE, "wsse:BinarySecurityToken");
        e.setAttribute("EncodingType", B64);
        e.setAttribute("ValueType", X509V3);
        e.setAttributeNS(WSU, "wsu:Id", id);
        e.setIdAttributeNS(WSU, "Id", true);
        e.setTextContent(Base64.getEncoder().encodeToString(der));
        return e;
    }

    static Element strTo(Document doc, String id) {
        Element str = doc.createElementNS(WSSE, "wsse:SecurityTokenReference");
        Element ref = doc.createElementNS(WSSE, "wsse:Reference");
        ref.setAttribute("URI", "#" + id);
        ref.setAttribute("ValueType", X509V3);
        str.appendChild(ref);
        return str;
    }

    static int produce(Path dir, Path signKey, Path signCert, Path recipientCert) throws Exception {
        Map<String, byte[]> parts = readParts(dir);
        Map<String, byte[]> wire = new LinkedHashMap<>();
        byte[] envelope = produceBytes(Files.readAllBytes(dir.resolve("template.xml")), parts, privateKey(signKey),
                Files.readAllBytes(signCert), Files.readAllBytes(recipientCert), wire);
        Files.createDirectories(dir.resolve("out"));
        for (Map.Entry<String, byte[]> part : wire.entrySet()) {
            Files.write(dir.resolve("out").resolve(hex(part.getKey())), part.getValue());
        }
        Files.write(dir.resolve("out").resolve("envelope.xml"), envelope);
        System.out.println("PRODUCED " + parts.size() + " part(s)");
        return 0;
    }

    static final SecureRandom RANDOM = new SecureRandom();

    static byte[] produceBytes(byte[] template, Map<String, byte[]> parts, PrivateKey signKey, byte[] signDer,
            byte[] recipientDer, Map<String, byte[]> wire) throws Exception {
        Document doc = parse(template);
        Element security = first(doc, WSSE, "Security");
        Element messaging = first(doc, EB, "Messaging");
        Element body = first(doc, S12, "Body");
        String xmlns = "http://www.w3.org/2000/xmlns/";
        security.setAttributeNS(xmlns, "xmlns:ds", DS);
        security.setAttributeNS(xmlns, "xmlns:xenc", XENC);
        security.setAttributeNS(xmlns, "xmlns:wsse11", WSSE11);
        // Sign.
        XMLSignature sig = new XMLSignature(doc, "", XMLSignature.ALGO_ID_SIGNATURE_RSA_SHA256,
                Transforms.TRANSFORM_C14N_EXCL_OMIT_COMMENTS);
        Element signBst = bst(doc, signDer, "X509-java-sign");
        security.appendChild(signBst);
        security.appendChild(sig.getElement());
        sig.addResourceResolver(new CidResolver(parts));
        for (Element target : new Element[] {body, messaging}) {
            Transforms ts = new Transforms(doc);
            ts.addTransform(Transforms.TRANSFORM_C14N_EXCL_OMIT_COMMENTS);
            sig.addDocument("#" + target.getAttributeNS(WSU, "Id"), ts, MessageDigestAlgorithm.ALGO_ID_DIGEST_SHA256);
        }
        for (String cid : parts.keySet()) {
            Transforms ts = new Transforms(doc);
            ts.addTransform(SWA + "Attachment-Content-Signature-Transform");
            sig.addDocument("cid:" + cid, ts, MessageDigestAlgorithm.ALGO_ID_DIGEST_SHA256);
        }
        sig.getKeyInfo().addUnknownElement(strTo(doc, "X509-java-sign"));
        sig.sign(signKey);
        // Encrypt the parts: one AES-128 key, wrapped with RSA-OAEP (MGF1-SHA256, SHA-256).
        KeyGenerator kg = KeyGenerator.getInstance("AES");
        kg.init(128);
        SecretKey cek = kg.generateKey();
        XMLCipher kc = XMLCipher.getInstance(XMLCipher.RSA_OAEP_11, null, MessageDigestAlgorithm.ALGO_ID_DIGEST_SHA256);
        kc.init(XMLCipher.WRAP_MODE, certificate(recipientDer).getPublicKey());
        EncryptedKey ek = kc.encryptKey(doc, cek, EncryptionConstants.MGF1_SHA256, null);
        ek.setId("EK-java");
        ReferenceList refs = kc.createReferenceList(ReferenceList.DATA_REFERENCE);
        int n = 0;
        for (String cid : parts.keySet()) refs.add(refs.newDataReference("#ED-java-" + n++));
        ek.setReferenceList(refs);
        Element ekEl = kc.martial(doc, ek);
        Element keyInfo = doc.createElementNS(DS, "ds:KeyInfo");
        keyInfo.appendChild(strTo(doc, "X509-java-recipient"));
        ekEl.insertBefore(keyInfo, first(ekEl, XENC, "CipherData"));
        Node anchor = security.getFirstChild();
        security.insertBefore(bst(doc, recipientDer, "X509-java-recipient"), anchor);
        security.insertBefore(ekEl, anchor);
        n = 0;
        for (Map.Entry<String, byte[]> part : parts.entrySet()) {
            byte[] iv = new byte[12];
            RANDOM.nextBytes(iv);
            Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
            gcm.init(Cipher.ENCRYPT_MODE, cek, new GCMParameterSpec(128, iv));
            byte[] ct = gcm.doFinal(part.getValue());
            byte[] wire_ = new byte[12 + ct.length];
            System.arraycopy(iv, 0, wire_, 0, 12);
            System.arraycopy(ct, 0, wire_, 12, ct.length);
            wire.put(part.getKey(), wire_);
            Element ed = doc.createElementNS(XENC, "xenc:EncryptedData");
            ed.setAttribute("Id", "ED-java-" + n++);
            ed.setAttribute("MimeType", "application/gzip");
            ed.setAttribute("Type", SWA + "Attachment-Content-Only");
            Element em = doc.createElementNS(XENC, "xenc:EncryptionMethod");
            em.setAttribute("Algorithm", XMLCipher.AES_128_GCM);
            ed.appendChild(em);
            Element ki = doc.createElementNS(DS, "ds:KeyInfo");
            Element str = doc.createElementNS(WSSE, "wsse:SecurityTokenReference");
            str.setAttributeNS(WSSE11, "wsse11:TokenType", "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey");
            Element r = doc.createElementNS(WSSE, "wsse:Reference");
            r.setAttribute("URI", "#EK-java");
            str.appendChild(r);
            ki.appendChild(str);
            ed.appendChild(ki);
            Element cd = doc.createElementNS(XENC, "xenc:CipherData");
            Element cr = doc.createElementNS(XENC, "xenc:CipherReference");
            cr.setAttribute("URI", "cid:" + part.getKey());
            Element trs = doc.createElementNS(XENC, "xenc:Transforms");
            Element tr = doc.createElementNS(DS, "ds:Transform");
            tr.setAttribute("Algorithm", SWA + "Attachment-Ciphertext-Transform");
            trs.appendChild(tr);
            cr.appendChild(trs);
            cd.appendChild(cr);
            ed.appendChild(cd);
            security.insertBefore(ed, anchor);
        }
        ByteArrayOutputStream os = new ByteArrayOutputStream();
        XMLUtils.outputDOM(doc, os);
        return os.toByteArray();
    }

    /** CPU time per message of the same work oots does: sign + encrypt + serialise, parse + decrypt + verify. */
    static int bench(Path dir, Path signKey, Path signCert, Path recipientKey, Path recipientCert, int iterations)
            throws Exception {
        byte[] template = Files.readAllBytes(dir.resolve("template.xml"));
        Map<String, byte[]> parts = readParts(dir);
        PrivateKey sk = privateKey(signKey), rk = privateKey(recipientKey);
        byte[] signDer = Files.readAllBytes(signCert), recipientDer = Files.readAllBytes(recipientCert);
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long send = 0, receive = 0;
        int warmup = iterations;  // let the JIT compile first, as in a long-running access point
        for (int i = 0; i < warmup + iterations; i++) {
            Map<String, byte[]> wire = new LinkedHashMap<>();
            long t0 = mx.getCurrentThreadCpuTime();
            byte[] envelope = produceBytes(template, parts, sk, signDer, recipientDer, wire);
            long t1 = mx.getCurrentThreadCpuTime();
            if (!verifyBytes(envelope, wire, rk, false)) throw new IllegalStateException("own message does not verify");
            long t2 = mx.getCurrentThreadCpuTime();
            if (i >= warmup) { send += t1 - t0; receive += t2 - t1; }
        }
        System.out.printf(Locale.ROOT, "SANTUARIO send_ms=%.3f receive_ms=%.3f%n", send / 1e6 / iterations, receive / 1e6 / iterations);
        return 0;
    }

    public static void main(String[] args) throws Exception {
        Init.init();
        Transform.register(SWA + "Attachment-Content-Signature-Transform", SwaContentTransform.class);
        int rc;
        if (args[0].equals("verify")) {
            rc = verify(Paths.get(args[1]), args.length > 2 ? Paths.get(args[2]) : null);
        } else if (args[0].equals("produce")) {
            rc = produce(Paths.get(args[1]), Paths.get(args[2]), Paths.get(args[3]), Paths.get(args[4]));
        } else if (args[0].equals("bench")) {
            rc = bench(Paths.get(args[1]), Paths.get(args[2]), Paths.get(args[3]), Paths.get(args[4]), Paths.get(args[5]),
                    Integer.parseInt(args[6]));
        } else {
            System.err.println("usage: As4Oracle verify DIR [KEY.pk8] | produce DIR SIGN.pk8 SIGN.der RECIPIENT.der");
            rc = 2;
        }
        System.exit(rc);
    }
}
