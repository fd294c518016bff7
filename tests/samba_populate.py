"""Populate a freshly provisioned Samba AD database (run by Debian's /usr/bin/python3, which has
Samba's own Python bindings; see tests/peers_samba.py). Not imported by the test suite.

    python3 samba_populate.py SMB_CONF SAM_LDB COMPUTERS_JSON READER_NAME READER_PASSWORD

1. Extends the schema with legacy LAPS (``ms-Mcs-AdmPwd``, ``ms-Mcs-AdmPwdExpirationTime``,
   the OIDs and syntaxes of Microsoft's AdmPwd.PS schema update) - Windows LAPS is left out,
   so the "not in this schema" path is real too.
2. Creates a plain domain user as the read-only bind account, and registers the domain
   controller's ``ldap/`` service principal names (Samba's ``samba_spnupdate`` does that at
   a real DC's first start, from ``setup/spn_update_list``; the test DC does not run the
   DNS update service that calls it), so Kerberos binds find ``ldap/dc1.city.test``.
3. Creates each computer object, then sets the attributes only the system writes
   (whenCreated, lastLogonTimestamp) with the relax control, and adds BitLocker recovery
   objects (msFVE-RecoveryInformation) under the computers that escrow keys.
"""

import datetime as dt
import json
import sys
import uuid

import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

LAPS_OID = "1.2.840.113556.1.8000.2554.50051.45980.28112.18903.35903.6685103.1224907.2"
EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def filetime(day):
    when = dt.datetime.fromisoformat(day).replace(hour=9, tzinfo=dt.UTC)
    return str(int((when - EPOCH).total_seconds()) * 10_000_000)


def main(conf, url, computers_json, reader, reader_password):
    lp = LoadParm()
    lp.load(conf)
    lp.set("dsdb:schema update allowed", "true")
    db = SamDB(url=url, session_info=system_session(), lp=lp)
    schema = db.get_schema_basedn().get_linearized()
    base = db.domain_dn()
    db.add_ldif(f"""dn: CN=ms-Mcs-AdmPwd,{schema}
objectClass: attributeSchema
attributeID: {LAPS_OID}.1
lDAPDisplayName: ms-Mcs-AdmPwd
adminDisplayName: ms-Mcs-AdmPwd
attributeSyntax: 2.5.5.5
oMSyntax: 19
isSingleValued: TRUE
searchFlags: 904

dn: CN=ms-Mcs-AdmPwdExpirationTime,{schema}
objectClass: attributeSchema
attributeID: {LAPS_OID}.2
lDAPDisplayName: ms-Mcs-AdmPwdExpirationTime
adminDisplayName: ms-Mcs-AdmPwdExpirationTime
attributeSyntax: 2.5.5.16
oMSyntax: 65
isSingleValued: TRUE
searchFlags: 0
""")
    db.modify_ldif("dn:\nchangetype: modify\nadd: schemaUpdateNow\nschemaUpdateNow: 1\n")
    db.modify_ldif(f"dn: CN=Computer,{schema}\nchangetype: modify\nadd: mayContain\n"
                   "mayContain: ms-Mcs-AdmPwd\nmayContain: ms-Mcs-AdmPwdExpirationTime\n")
    db.modify_ldif("dn:\nchangetype: modify\nadd: schemaUpdateNow\nschemaUpdateNow: 1\n")

    db.newuser(reader, reader_password)
    dcs = db.search(base, expression="(userAccountControl:1.2.840.113556.1.4.803:=8192)", attrs=["dNSHostName"])
    for dc in dcs:
        host = str(dc["dNSHostName"][0])
        short = host.split(".")[0]
        spns = [f"ldap/{host}", f"ldap/{host}/{host.partition('.')[2]}", f"ldap/{short.upper()}"]
        db.modify_ldif(f"dn: {dc.dn}\nchangetype: modify\nadd: servicePrincipalName\n"
                       + "".join(f"servicePrincipalName: {spn}\n" for spn in spns))
    db.add_ldif(f"dn: OU=Workstations,{base}\nobjectClass: organizationalUnit\n")

    with open(computers_json, encoding="utf-8") as fh:
        computers = json.load(fh)
    db.transaction_start()
    try:
        for n, c in enumerate(computers, start=1):
            if n % 250 == 0:  # smaller transactions: one of 10,000 objects grows slower and slower
                db.transaction_commit()
                db.transaction_start()
            ou = "CN=Computers" if c["os"] and "Server" in c["os"] else "OU=Workstations"
            dn = f"CN={c['name']},{ou},{base}"
            uac = 4096 | (2 if c["disabled"] else 0)
            msg = {"dn": dn, "objectClass": "computer", "sAMAccountName": c["name"] + "$",
                   "userAccountControl": str(uac)}
            if c["dns"]:
                msg["dNSHostName"] = c["dns"]
            if c["os"]:
                msg["operatingSystem"] = c["os"]
                msg["operatingSystemVersion"] = c["version"]
            db.add(msg)
            mod = [f"dn: {dn}", "changetype: modify", "replace: whenCreated",
                   f"whenCreated: {c['created'].replace('-', '')}090000.0Z", "-"]
            if c["last_logon"]:
                mod += ["replace: lastLogonTimestamp", f"lastLogonTimestamp: {filetime(c['last_logon'])}", "-"]
            if c["laps_expires"]:
                mod += ["replace: ms-Mcs-AdmPwdExpirationTime",
                        f"ms-Mcs-AdmPwdExpirationTime: {filetime(c['laps_expires'])}", "-"]
            if c["laps_password"]:
                mod += ["replace: ms-Mcs-AdmPwd", f"ms-Mcs-AdmPwd: {c['laps_password']}", "-"]
            db.modify_ldif("\n".join(mod) + "\n", controls=["relax:0"])
            for k in range(c["recovery_keys"]):
                g = uuid.uuid4()
                m = ldb.Message()
                m.dn = ldb.Dn(db, f"CN=2025-0{k + 1}-01T09:00:00-00:00{{{str(g).upper()}}},{dn}")
                m["objectClass"] = ldb.MessageElement("msFVE-RecoveryInformation", ldb.FLAG_MOD_ADD, "objectClass")
                m["msFVE-RecoveryGuid"] = ldb.MessageElement(g.bytes_le, ldb.FLAG_MOD_ADD, "msFVE-RecoveryGuid")
                m["msFVE-RecoveryPassword"] = ldb.MessageElement(
                    "-".join(f"{(k * 7 + j) * 11 % 1000000:06d}" for j in range(8)), ldb.FLAG_MOD_ADD,
                    "msFVE-RecoveryPassword")
                db.add(m)
    except Exception:
        db.transaction_cancel()
        raise
    db.transaction_commit()


if __name__ == "__main__":
    main(*sys.argv[1:6])
