#!/usr/bin/perl
# netsmpp_esme.pl: an ESME built on Debian's Net::SMPP (code pushgate does
# not share) for the SMPP server tests.  Binds, submits with a window of
# outstanding requests (async mode), answers every deliver_sm, and writes one
# key=value line per event to --log:
#   ev=bind status=0x..          ev=resp n=K dst=.. status=0x.. id=..
#   ev=receipt id=.. stat=.. tlv_id=.. state=N esm=0x.. t=EPOCH   ev=mo src=.. dst=.. text_hex=..
#   ev=summary sent=.. ok=.. throttled=.. failed=.. receipts=.. seconds=..
# Kinds of text (--kinds, cycled): gsm, ucs2, long_udh (3 GSM parts, 8-bit
# UDH), long_sar (3 UCS-2 parts, SAR TLVs), payload (one message_payload).
# --schedule T sets schedule_delivery_time; --skip-part K leaves part K of
# every long message out (pushgate must refuse the others after its timeout).
# --cancel/--query ID,... send cancel_sm, then query_sm, after the submits.
# --no-ack N leaves the first N deliver_sm unanswered (pushgate must resend them).
# Exit 0 when the run finished (the test judges the log), 1 on a protocol
# error or timeout, 2 when the bind was refused.
use strict;
use utf8;
use warnings;
use Getopt::Long;
use Encode qw(encode);
use Time::HiRes qw(time);
use Net::SMPP;

my %o = (port => 2775, mode => 'trx', count => 0, window => 10, prefix => '4477009', kinds => 'gsm',
         'expect-receipts' => 0, 'max-seconds' => 120, 'system-id' => 'esme', password => 'pw',
         'linger' => 0, 'unbind-after-resps' => 0, source => 'ESME', 'expect-mo' => 0, 'query' => '',
         'cancel' => '', 'registered' => 1, 'no-ack' => 0, 'schedule' => '', 'skip-part' => 0);
GetOptions(\%o, 'port=i', 'mode=s', 'count=i', 'window=i', 'prefix=s', 'kinds=s', 'expect-receipts=i',
           'max-seconds=f', 'system-id=s', 'password=s', 'log=s', 'linger=f', 'unbind-after-resps',
           'source=s', 'expect-mo=i', 'query=s', 'cancel=s', 'registered=i', 'first=i', 'no-ack=i', 'schedule=s', 'skip-part=i') or exit 1;
open(my $log, '>>', $o{log} // '/dev/stdout') or die "log: $!\n";
$log->autoflush(1);
sub out { print $log join(' ', @_), "\n"; }

my $deadline = time + $o{'max-seconds'};
local $SIG{ALRM} = sub { out('ev=timeout'); exit 1; };
alarm(int($o{'max-seconds'}) + 1);

my $ctor = $o{mode} eq 'tx' ? 'new_transmitter' : $o{mode} eq 'rx' ? 'new_receiver' : 'new_transceiver';
my ($smpp, $resp) = Net::SMPP->$ctor('127.0.0.1', port => $o{port}, system_id => $o{'system-id'},
                                     password => $o{password}, timeout => 10, async => 1);
if (!$smpp) { out('ev=connect_failed'); exit 1; }
# async constructor: the bind answer is read here
if (!ref $resp) { $resp = $smpp->read_pdu(); }
my $bst = $resp ? sprintf('0x%02x', $resp->{status}) : 'none';
out("ev=bind status=$bst mode=$o{mode}");
exit 2 unless $resp && $resp->{status} == 0;

sub text_of {
    my ($kind, $i) = @_;
    my $g = "ESME $i says hello through pushgate, GSM text. ";
    my $k = "푸시게이트 $i 번 메시지 ";
    return ($kind eq 'gsm') ? substr($g x 3, 0, 60)
         : ($kind eq 'ucs2') ? substr($k x 4, 0, 30)
         : ($kind eq 'long_udh') ? substr($g x 10, 0, 400)
         : ($kind eq 'long_sar') ? substr($k x 12, 0, 150)
         : substr($g x 20, 0, 700);   # payload
}

# Each logical message -> list of [short_message, dcs, esm_class, %tlv]
sub pdus_of {
    my ($kind, $i) = @_;
    my $t = text_of($kind, $i);
    if ($kind eq 'gsm') { return [[$t, 0, 0]]; }
    if ($kind eq 'ucs2') { return [[encode('UTF-16BE', $t), 8, 0]]; }
    if ($kind eq 'payload') { return [['', 0, 0, message_payload => $t]]; }
    if ($kind eq 'long_udh') {
        my @p = ($t =~ /(.{1,153})/gs);
        my $ref = $i & 0xff;
        return [map { [pack('CCCCCC', 5, 0, 3, $ref, scalar(@p), $_ + 1) . $p[$_], 0, 0x40] } 0 .. $#p];
    }
    my $u = encode('UTF-16BE', $t);
    my @p = ($u =~ /(.{1,134})/gs);
    return [map { [$p[$_], 8, 0, sar_msg_ref_num => pack('n', $i & 0xffff),
                   sar_total_segments => pack('C', scalar(@p)), sar_segment_seqnum => pack('C', $_ + 1)] } 0 .. $#p];
}

my @kinds = split /,/, $o{kinds};
my (%pending, @queue);   # seq -> [n, dst]
my $first = $o{first} // 0;
for my $n ($first .. $first + $o{count} - 1) {
    my $kind = $kinds[$n % @kinds];
    my $dst = sprintf('%s%05d', $o{prefix}, $n);
    my @parts = @{pdus_of($kind, $n)};
    for my $k (0 .. $#parts) {
        next if $o{'skip-part'} && @parts > 1 && $k + 1 == $o{'skip-part'};
        push @queue, [$n, $dst, $parts[$k]];
    }
}
my ($sent, $ok, $throttled, $failed, $receipts, $mo) = (0, 0, 0, 0, 0, 0);
my %seen_receipt;
my $unbinding = 0;   # deliver_sm after our unbind: not answered, not counted (pushgate sends them again)
my $t0 = time;

sub handle {
    my ($pdu) = @_;
    my $cmd = $pdu->{cmd};
    if ($cmd == Net::SMPP::CMD_submit_sm_resp || $cmd == Net::SMPP::CMD_data_sm_resp
        || $cmd == Net::SMPP::CMD_query_sm_resp || $cmd == Net::SMPP::CMD_cancel_sm_resp
        || $cmd == Net::SMPP::CMD_generic_nack) {
        my $p = delete $pending{$pdu->{seq}};
        my $st = sprintf('0x%02x', $pdu->{status});
        if ($cmd == Net::SMPP::CMD_query_sm_resp) {
            my $ms = $pdu->{message_state} // -1;
            out("ev=query_resp status=$st id=" . ($pdu->{message_id} // '-') . " state=$ms err="
                . ($pdu->{error_code} // '-') . " final=" . ($pdu->{final_date} // '-'));
            return;
        }
        if ($cmd == Net::SMPP::CMD_cancel_sm_resp) { out("ev=cancel_resp status=$st"); return; }
        return unless $p;
        my $id = $pdu->{message_id} // '-';
        $id =~ s/\0$//;
        out("ev=resp n=$p->[0] dst=$p->[1] status=$st id=$id");
        if ($pdu->{status} == 0) { $ok++; } elsif ($pdu->{status} == 0x58) { $throttled++; } else { $failed++; }
    } elsif ($cmd == Net::SMPP::CMD_deliver_sm && $unbinding) {
        out('ev=deliver_sm_after_unbind');
    } elsif ($cmd == Net::SMPP::CMD_deliver_sm && $o{'no-ack'} > 0) {
        $o{'no-ack'}--;   # left unanswered: pushgate must send it again
        my $tlv_id = $pdu->{receipted_message_id} // '';
        $tlv_id =~ s/\0$//;
        out("ev=not_acked tlv_id=$tlv_id");
    } elsif ($cmd == Net::SMPP::CMD_deliver_sm) {
        my $text = $pdu->{short_message} // '';
        if (($pdu->{esm_class} & 0x3c) == 0x04) {
            my ($id) = $text =~ /\bid:(\S+)/;
            my ($stat) = $text =~ /\bstat:(\S+)/;
            my ($err) = $text =~ /\berr:(\S+)/;
            my $tlv_id = $pdu->{receipted_message_id} // '';
            $tlv_id =~ s/\0$//;
            my $state = defined $pdu->{message_state} ? ord($pdu->{message_state}) : -1;
            my $dup = $seen_receipt{$tlv_id}++ ? 1 : 0;
            out(sprintf('ev=receipt id=%s stat=%s err=%s tlv_id=%s state=%d esm=0x%02x src=%s dst=%s dup=%d t=%.3f',
                        $id // '-', $stat // '-', $err // '-', $tlv_id, $state, $pdu->{esm_class},
                        $pdu->{source_addr}, $pdu->{destination_addr}, $dup, time));
            $receipts++;
        } else {
            my $body = length($text) ? $text : ($pdu->{message_payload} // '');
            out(sprintf('ev=mo src=%s dst=%s dcs=%d text_hex=%s', $pdu->{source_addr}, $pdu->{destination_addr},
                        $pdu->{data_coding}, unpack('H*', $body)));
            $mo++;
        }
        $smpp->deliver_sm_resp(seq => $pdu->{seq}, message_id => '');
    } elsif ($cmd == Net::SMPP::CMD_enquire_link) {
        $smpp->enquire_link_resp(seq => $pdu->{seq});
    } elsif ($cmd == Net::SMPP::CMD_unbind) {
        $smpp->unbind_resp(seq => $pdu->{seq});
        out('ev=unbound_by_peer');
        exit 0;
    } else {
        out(sprintf('ev=other cmd=0x%08x', $cmd));
    }
}

while (@queue || %pending) {
    while (@queue && keys(%pending) < $o{window}) {
        my ($n, $dst, $p) = @{shift @queue};
        my ($sm, $dcs, $esm, %tlv) = @$p;
        my $seq = $smpp->submit_sm(source_addr_ton => 5, source_addr => $o{source}, dest_addr_ton => 1,
                                   dest_addr_npi => 1, destination_addr => $dst, short_message => $sm,
                                   data_coding => $dcs, esm_class => $esm,
                                   registered_delivery => $o{registered},
                                   schedule_delivery_time => $o{schedule}, %tlv);
        $pending{$seq} = [$n, $dst];
        $sent++;
    }
    my $pdu = $smpp->read_pdu() or do { out('ev=read_failed'); exit 1; };
    handle($pdu);
}
my $submit_seconds = time - $t0;
out(sprintf('ev=submitted sent=%d ok=%d throttled=%d failed=%d seconds=%.3f', $sent, $ok, $throttled, $failed,
            $submit_seconds));

for my $id (grep { length } split /,/, $o{cancel}) {
    my $seq = $smpp->cancel_sm(message_id => $id, source_addr => $o{source}, destination_addr => '');
    $pending{$seq} = 1;
    handle($smpp->read_pdu() // do { out('ev=read_failed'); exit 1; }) while exists $pending{$seq};
}
for my $id (grep { length } split /,/, $o{query}) {
    my $seq = $smpp->query_sm(message_id => $id, source_addr => $o{source});
    $pending{$seq} = 1;
    handle($smpp->read_pdu() // do { out('ev=read_failed'); exit 1; }) while exists $pending{$seq};
}

if (!$o{'unbind-after-resps'}) {
    my $until = $o{linger} ? time + $o{linger} : $deadline;
    while (time < $until && ($o{linger} || $receipts < $o{'expect-receipts'} || $mo < $o{'expect-mo'})) {
        my $rin = '';
        vec($rin, fileno($smpp), 1) = 1;
        my $left = $until - time;
        next unless select(my $rout = $rin, undef, undef, $left > 0.5 ? 0.5 : ($left > 0 ? $left : 0));
        my $pdu = $smpp->read_pdu() or do { out('ev=read_failed'); exit 1; };
        handle($pdu);
    }
}
$unbinding = 1;
my $useq = $smpp->unbind();
while (1) {
    my $pdu = $smpp->read_pdu() or last;
    last if $pdu->{cmd} == Net::SMPP::CMD_unbind_resp;
    handle($pdu);   # receipts still arriving are answered (and counted)
}
out(sprintf('ev=summary sent=%d ok=%d throttled=%d failed=%d receipts=%d mo=%d seconds=%.3f submit_seconds=%.3f',
            $sent, $ok, $throttled, $failed, $receipts, $mo, time - $t0, $submit_seconds));
alarm 0;
exit 0;
