#!/usr/bin/perl
# netsmpp_client.pl: interop check of smsc-sim against an independent SMPP
# implementation (Debian libnet-smpp-perl).  Binds as transceiver, submits to
# numbers ending in 1 (DELIVRD) and 9 (UNDELIV), prints every receipt, and
# exits non-zero unless each submit got its receipt with the expected stat.
# usage: netsmpp_client.pl PORT [SYSTEM_ID PASSWORD]
use strict;
use warnings;
use Net::SMPP;

my $port = shift or die "usage: $0 PORT [SYSTEM_ID PASSWORD]\n";
my $sysid = shift // 'netsmpp';
my $pw = shift // 'pw';

my ($smpp, $resp) = Net::SMPP->new_transceiver('127.0.0.1', port => $port,
    system_id => $sysid, password => $pw, timeout => 5);
die "connect failed\n" unless $smpp;
die "bind failed, status " . ($resp ? $resp->{status} : 'none') . "\n"
    unless $resp && $resp->{status} == 0;
print "bound system_id=$resp->{system_id}\n";

my %expect;    # message id -> expected stat
my @dests = ('447700900001', '447700900009', '447700900011', '447700900019');
for my $i (0 .. $#dests) {
    my $r = $smpp->submit_sm(source_addr => 'NetSMPP', destination_addr => $dests[$i],
        short_message => "interop message $i", registered_delivery => 1);
    die "submit_sm failed\n" unless $r && $r->{status} == 0;
    my $want = $dests[$i] =~ /9$/ ? 'UNDELIV' : 'DELIVRD';
    $expect{$r->{message_id}} = $want;
    print "submitted dst=$dests[$i] id=$r->{message_id} expect=$want\n";
}

my $ok = 0;
local $SIG{ALRM} = sub { die "timeout waiting for receipts\n" };
alarm 10;
while ($ok < scalar(keys %expect)) {
    my $pdu = $smpp->read_pdu() or die "read failed\n";
    if ($pdu->{cmd} == Net::SMPP::CMD_deliver_sm) {
        $smpp->deliver_sm_resp(seq => $pdu->{seq}, message_id => '');
        my $text = $pdu->{short_message};
        my ($id) = $text =~ /\bid:(\S+)/;
        my ($stat) = $text =~ /\bstat:(\S+)/;
        my $tlv_id = $pdu->{receipted_message_id} // '';
        $tlv_id =~ s/\0$//;
        my $state = defined $pdu->{message_state} ? ord($pdu->{message_state}) : -1;
        print "receipt esm_class=$pdu->{esm_class} tlv_id=$tlv_id message_state=$state text=\"$text\"\n";
        if (defined $id && exists $expect{$id} && $expect{$id} eq $stat && $tlv_id eq $id) {
            $ok++;
        } else {
            print "UNEXPECTED receipt\n";
        }
    } elsif ($pdu->{cmd} == Net::SMPP::CMD_enquire_link) {
        $smpp->enquire_link_resp(seq => $pdu->{seq});
    }
}
alarm 0;
my $el = $smpp->enquire_link();
die "enquire_link failed\n" unless $el && $el->{status} == 0;
$smpp->unbind();
print "receipts ok=$ok of " . scalar(keys %expect) . "\n";
exit($ok == scalar(keys %expect) ? 0 : 1);
