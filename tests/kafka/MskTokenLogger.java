package surgstream.test;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;

/**
 * The broker side of tests/msk_iam.rs: an OAUTHBEARER validator that accepts what MSK would
 * look at first in an MSK IAM token (a base64url presigned URL of kafka.REGION.amazonaws.com,
 * Action kafka-cluster:Connect, SigV4, signed for kafka-cluster, not expired, nor signed with
 * temporary credentials that have expired) and writes every
 * token it is offered to the file the JAAS option tokenLog names, one line each:
 * "validated_ms ACCEPTED|REJECTED:reason access_key signed_ms expires_ms token".
 * It cannot check the signature (it does not know the secret key); tests/aws_tokens.rs compares
 * the signature with AWS's own signer instead.
 */
public class MskTokenLogger implements AuthenticateCallbackHandler {
    private Path log;

    @Override
    public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> entries) {
        Object path = entries.get(0).getOptions().get("tokenLog");
        if (path == null) throw new IllegalArgumentException("MskTokenLogger needs the JAAS option tokenLog");
        log = Paths.get(path.toString());
    }

    @Override
    public void close() {}

    @Override
    public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback c : callbacks) {
            if (c instanceof OAuthBearerValidatorCallback) {
                validate((OAuthBearerValidatorCallback) c);
            } else if (c instanceof OAuthBearerExtensionsValidatorCallback) {
                // MSK tokens come without SASL extensions: nothing to validate.
            } else {
                throw new UnsupportedCallbackException(c);
            }
        }
    }

    private void validate(OAuthBearerValidatorCallback cb) {
        String token = cb.tokenValue();
        long now = System.currentTimeMillis();
        String url;
        try {
            url = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            reject(cb, now, "not-base64url", "-", 0, 0, token);
            return;
        }
        Map<String, String> q = new HashMap<>();
        int at = url.indexOf('?');
        if (at >= 0) {
            for (String kv : url.substring(at + 1).split("&")) {
                int eq = kv.indexOf('=');
                if (eq > 0) {
                    q.put(kv.substring(0, eq), URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8));
                }
            }
        }
        String credential = q.getOrDefault("X-Amz-Credential", "");
        String key = credential.contains("/") ? credential.substring(0, credential.indexOf('/')) : "-";
        long signed = 0, expires = 0;
        try {
            signed = LocalDateTime.parse(q.getOrDefault("X-Amz-Date", ""),
                    DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'")).toInstant(ZoneOffset.UTC).toEpochMilli();
            expires = signed + 1000L * Long.parseLong(q.getOrDefault("X-Amz-Expires", "0"));
        } catch (RuntimeException e) {
            reject(cb, now, "bad-date", key, 0, 0, token);
            return;
        }
        String reason = null;
        if (!url.matches("https://kafka\\.[a-z0-9-]+\\.amazonaws\\.com/\\?.*")) reason = "host";
        else if (!"kafka-cluster:Connect".equals(q.get("Action"))) reason = "action";
        else if (!"AWS4-HMAC-SHA256".equals(q.get("X-Amz-Algorithm"))) reason = "algorithm";
        else if (!credential.endsWith("/kafka-cluster/aws4_request")) reason = "service";
        else if (!"host".equals(q.get("X-Amz-SignedHeaders"))) reason = "signed-headers";
        else if (q.getOrDefault("X-Amz-Signature", "").length() != 64) reason = "signature";
        else if (now > expires) reason = "expired";
        else if (credentialsExpired(q.get("X-Amz-Security-Token"), now)) reason = "credentials-expired";
        else if (signed > now + 300_000) reason = "signed-in-the-future";
        if (reason != null) {
            reject(cb, now, reason, key, signed, expires, token);
            return;
        }
        record(now + " ACCEPTED " + key + " " + signed + " " + expires + " " + token);
        final long lifetime = expires, start = signed;
        cb.token(new OAuthBearerToken() {
            public String value() { return token; }
            public Set<String> scope() { return Set.of(); }
            public long lifetimeMs() { return lifetime; }
            public String principalName() { return "msk-iam"; }
            public Long startTimeMs() { return start; }
        });
    }

    /** The test's temporary credentials name their expiry at the end of their session token
     * ("...-expires-MS"): a token signed with them is refused after it, as AWS refuses it. */
    private static boolean credentialsExpired(String sessionToken, long now) {
        if (sessionToken == null) return false;
        int at = sessionToken.lastIndexOf("-expires-");
        if (at < 0) return false;
        try {
            return now > Long.parseLong(sessionToken.substring(at + "-expires-".length()));
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private void reject(OAuthBearerValidatorCallback cb, long now, String reason, String key, long signed, long expires, String token) {
        record(now + " REJECTED:" + reason + " " + key + " " + signed + " " + expires + " " + token);
        cb.error("invalid_token", null, null);
    }

    private synchronized void record(String line) {
        try {
            Files.write(log, (line + "\n").getBytes(StandardCharsets.UTF_8),
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (java.io.IOException e) {
            throw new RuntimeException("cannot write the token log " + log, e);
        }
    }
}
