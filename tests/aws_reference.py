"""AWS's own libraries as the reference for tests/aws_*.rs: the MSK token of
aws-msk-iam-sasl-signer-python, boto3's RDS token, and boto3 against moto's server
(AWS_ENDPOINT_URL) for Glue and Secrets Manager. Credentials come from botocore's own chain,
from the environment the test sets.

  msk REGION SIGNING_TIME USER_AGENT      the MSK token, signed at SIGNING_TIME (RFC 3339)
  rds HOST PORT USER REGION SIGNING_TIME  the RDS token
  secret NAME VALUE                       creates a secret; prints its ARN
  glue-location DATABASE TABLE            the table's metadata_location, or "-" if none
  glue-table DATABASE TABLE               the table as JSON
"""
import datetime
import json
import sys


def at(text):
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def fix_signing_time(text):
    import botocore.auth

    fixed = at(text)
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: fixed


def main(argv):
    cmd = argv[1]
    if cmd == "msk":
        region, signing_time, user_agent = argv[2:5]
        fix_signing_time(signing_time)
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider as signer

        # The library names itself in the token's User-Agent; the test gives both signers one.
        setattr(signer, "__get_user_agent__", lambda: user_agent)
        token, expiry_ms = signer.generate_auth_token(region)
        print(token)
        print(expiry_ms)
    elif cmd == "rds":
        host, port, user, region, signing_time = argv[2:7]
        fix_signing_time(signing_time)
        import boto3

        print(boto3.client("rds", region_name=region).generate_db_auth_token(host, int(port), user))
    elif cmd == "secret":
        import boto3

        name, value = argv[2:4]
        out = boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)
        print(out["ARN"])
    elif cmd in ("glue-location", "glue-table"):
        import boto3

        database, table = argv[2:4]
        glue = boto3.client("glue")
        try:
            t = glue.get_table(DatabaseName=database, Name=table)["Table"]
        except glue.exceptions.EntityNotFoundException:
            print("-")
            return
        if cmd == "glue-location":
            print(t.get("Parameters", {}).get("metadata_location", "-"))
        else:
            print(json.dumps(t, default=str))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
