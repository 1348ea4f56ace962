#!/usr/bin/perl
# netsmpp_smsc.pl: an SMSC built on an SMPP implementation not written here
# (Debian libnet-smpp-perl), so pushgated can be checked against a foreign
# peer.  Net::SMPP listens, accepts, decodes every PDU (its pdu_tab decoders
# and its TLV table) and encodes every PDU it sends (bind_*_resp,
# submit_sm_resp, deliver_sm, enquire_link(_resp), unbind_resp).  The script
# adds only what Net::SMPP's blocking read_pdu cannot give a server with a
# pipelining peer: a select loop whose reads never wait, framing PDUs, so
# many submit_sm in flight are answered in order while receipts fall due.
#
# Receipts: appendix-B text plus receipted_message_id and message_state TLVs,
# esm_class 0x04, after --dlr-delay-ms; destinations ending in 9 get UNDELIV
# err:001, others DELIVRD.  Long texts (UDH 8/16-bit, SAR TLVs,
# message_payload) are also reassembled and logged as ev=message so a test
# can compare the whole text with what it sent.
#
# Prints "ready port=N" once listening.  Logs one key=value line per event
# to --log.  Exits after --max-seconds (default 300) whatever happens, and
# on SIGTERM/SIGINT.  Talks to 127.0.0.1 only.
#
# usage: netsmpp_smsc.pl [--port N] [--log FILE] [--dlr-delay-ms N]
#        [--enquire-every S] [--max-seconds S] [--system-id ID --password PW]
use strict;
use warnings;
use Encode qw(decode encode);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Getopt::Long;
use IO::Handle;
use IO::Select;
use Socket qw(SOL_SOCKET SO_SNDTIMEO);
use Net::SMPP;
use Time::HiRes qw(time);
use POSIX qw(strftime);

my %opt = (port => 0, log => '-', 'dlr-delay-ms' => 50, 'enquire-every' => 0,
	   'max-seconds' => 300, 'system-id' => '', password => '');
GetOptions(\%opt, 'port=i', 'log=s', 'dlr-delay-ms=i', 'enquire-every=f', 'max-seconds=f',
	   'system-id=s', 'password=s') or die "bad options\n";

my $MAX_PDU = 65536 + 1024;
my $LOG;
if ($opt{log} eq '-') {
	$LOG = \*STDERR;
} else {
	open($LOG, '>>', $opt{log}) or die "$opt{log}: $!\n";
}
$LOG->autoflush(1);

sub logev {
	my ($fmt, @args) = @_;
	printf $LOG "ts=%.3f $fmt\n", time(), @args;
}

# A Net::SMPP warning (unknown TLV tag, ...) means our peer sent something it
# could not place: log it on one line so the test can insist on none.
$SIG{__WARN__} = sub {
	my $w = join('', @_);
	$w =~ s/[\r\n]+/ /g;
	$w =~ s/[^\x20-\x7e]/./g;
	logev('ev=warn text="%s"', $w);
};

my $listen = Net::SMPP->new_listen('127.0.0.1', port => $opt{port}, listen => 16)
	or die "listen on 127.0.0.1:$opt{port}: $!\n";
$listen->blocking(0);
my $deadline = time() + $opt{'max-seconds'};
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
$SIG{PIPE} = 'IGNORE';

my $sel = IO::Select->new($listen);
my %conns;       # fileno -> { sock, buf, bound, system_id, peer, receipts_out{seq} }
my @due;         # receipts waiting for their time: { at, id, dst, src, stat, ... }
my %parked;      # receipts due while nobody able to receive them is bound
my $next_id = 1;
my $id_base = sprintf('%08x', int(time()) & 0xffffffff);
my $max_frames = 0;   # most whole PDUs one read brought (pipelining seen)
my %assembly;    # "src/dst/ref" -> { total, parts{seq} => text }

print "ready port=" . $listen->sockport() . "\n";
STDOUT->flush();
logev('ev=listen port=%d', $listen->sockport());

sub hexs { return unpack('H*', $_[0]) }

sub close_conn {
	my ($c, $why) = @_;
	logev('ev=close peer=%s system_id=%s why=%s unacked=%d', $c->{peer}, $c->{system_id} // '-',
	      $why, scalar(keys %{$c->{receipts_out}}));
	# receipts sent but unanswered go back to the queue: none is lost
	for my $r (values %{$c->{receipts_out}}) {
		$r->{at} = time();
		push @due, $r;
	}
	$sel->remove($c->{sock});
	delete $conns{fileno($c->{sock})};
	close($c->{sock});
}

# Decodes one framed PDU with Net::SMPP's own decoders; checks that the
# mandatory part and the TLVs consume exactly command_length.
sub decode_frame {
	my ($c, $frame) = @_;
	my ($len, $cmd, $status, $seq) = unpack('NNNN', $frame);
	my $pdu = { cmd => $cmd, status => $status, seq => $seq, data => substr($frame, 16) };
	my $t = Net::SMPP::pdu_tab()->{$cmd};
	return (bless($pdu, 'Net::SMPP::PDU'), 'unknown_command') if !$t;
	$pdu->{known_pdu} = 1;
	my $mlen = $t->{decode}->($pdu, $c->{sock});
	my $dlen = length($pdu->{data});
	return (bless($pdu, 'Net::SMPP::PDU'), "mandatory_overrun:$mlen>$dlen") if $mlen > $dlen;
	my $off = $mlen;
	while ($off < $dlen) {
		return (bless($pdu, 'Net::SMPP::PDU'), "tlv_header_cut_at:$off") if $dlen - $off < 4;
		my ($tag, $tl) = unpack('nn', substr($pdu->{data}, $off, 4));
		return (bless($pdu, 'Net::SMPP::PDU'), sprintf('tlv_0x%04x_overrun', $tag))
			if $off + 4 + $tl > $dlen;
		$off += 4 + $tl;
	}
	Net::SMPP::decode_optional_params($pdu, $mlen) if $mlen < $dlen;
	return (bless($pdu, 'Net::SMPP::PDU'), undef);
}

# GSM 03.38 default alphabet, the part a test text uses (letters, digits and
# the punctuation that maps to itself); anything else becomes "?".
sub gsm_to_text {
	my ($octets) = @_;
	my $s = '';
	for my $o (unpack('C*', $octets)) {
		if (($o >= 0x41 && $o <= 0x5a) || ($o >= 0x61 && $o <= 0x7a) || ($o >= 0x20 && $o <= 0x23)
		    || ($o >= 0x25 && $o <= 0x3f)) {
			$s .= chr($o);
		} else {
			$s .= '?';
		}
	}
	return $s;
}

sub body_to_text {
	my ($octets, $dcs) = @_;
	return decode('UTF-16BE', $octets) if $dcs == 8;
	return decode('ISO-8859-1', $octets) if $dcs == 3;
	return gsm_to_text($octets);
}

# Collects parts; logs ev=message with the whole text (UTF-8 in hex) once
# every part of a message is in.
sub assemble {
	my ($p, $body, $ref, $total, $seqn) = @_;
	my $text = body_to_text($body, $p->{data_coding});
	if ($total <= 1) {
		logev('ev=message src=%s dst=%s parts=1 dcs=%d text=%s', $p->{source_addr},
		      $p->{destination_addr}, $p->{data_coding}, hexs(encode('UTF-8', $text)));
		return;
	}
	my $key = "$p->{source_addr}/$p->{destination_addr}/$ref";
	my $a = $assembly{$key} //= { total => $total, parts => {} };
	if ($a->{total} != $total || $seqn < 1 || $seqn > $total || exists $a->{parts}{$seqn}) {
		logev('ev=bad_part key=%s total=%d seq=%d', $key, $total, $seqn);
		return;
	}
	$a->{parts}{$seqn} = $text;
	return if scalar(keys %{$a->{parts}}) < $total;
	my $whole = join('', map { $a->{parts}{$_} } 1 .. $total);
	delete $assembly{$key};
	logev('ev=message src=%s dst=%s parts=%d dcs=%d text=%s', $p->{source_addr},
	      $p->{destination_addr}, $total, $p->{data_coding}, hexs(encode('UTF-8', $whole)));
}

sub on_submit {
	my ($c, $p) = @_;
	my $sm = $p->{short_message} // '';
	my ($udh, $ref, $total, $seqn) = ('-', 0, 1, 1);
	my $body = $sm;
	if (($p->{esm_class} & 0x40) && length($sm) > 0) {
		my $ul = ord(substr($sm, 0, 1)) + 1;
		if ($ul > length($sm)) {
			logev('ev=bad_udh seq=%d udh=%s', $p->{seq}, hexs($sm));
			$c->{sock}->submit_sm_resp(seq => $p->{seq}, status => 0x0C, message_id => '');
			return;
		}
		$udh = hexs(substr($sm, 0, $ul));
		$body = substr($sm, $ul);
		my $ies = substr($sm, 1, $ul - 1);
		while (length($ies) >= 2) {
			my ($iei, $iel) = unpack('CC', $ies);
			my $v = substr($ies, 2, $iel);
			if ($iei == 0x00 && $iel == 3) {
				($ref, $total, $seqn) = unpack('CCC', $v);
			} elsif ($iei == 0x08 && $iel == 4) {
				($ref, $total, $seqn) = unpack('nCC', $v);
			}
			$ies = substr($ies, 2 + $iel);
		}
	}
	my $sar = '-';
	if (defined $p->{sar_msg_ref_num}) {
		$ref = unpack('n', $p->{sar_msg_ref_num});
		$total = ord($p->{sar_total_segments} // "\x01");
		$seqn = ord($p->{sar_segment_seqnum} // "\x01");
		$sar = "$ref/$total/$seqn";
	}
	my $payload = '-';
	if (defined $p->{message_payload}) {
		$body = $p->{message_payload};
		$payload = length($body);
	}
	my $id = sprintf('%s%06d', $id_base, $next_id++);
	$c->{sock}->submit_sm_resp(seq => $p->{seq}, message_id => $id);
	my $stat = $p->{destination_addr} =~ /9$/ ? 'UNDELIV' : 'DELIVRD';
	logev('ev=submit_sm seq=%d src=%s dst=%s id=%s esm=0x%02x dcs=%d len=%d udh=%s sar=%s '
	      . 'payload=%s stat=%s', $p->{seq}, $p->{source_addr}, $p->{destination_addr}, $id,
	      $p->{esm_class}, $p->{data_coding}, length($sm), $udh, $sar, $payload, $stat);
	assemble($p, $body, $ref, $total, $seqn);
	return if !($p->{registered_delivery} & 1);
	(my $text = substr($body, 0, 20)) =~ s/[^\x20-\x7e]/./g;
	push @due, { at => time() + $opt{'dlr-delay-ms'} / 1000.0, id => $id,
		     src => $p->{source_addr}, dst => $p->{destination_addr},
		     src_ton => $p->{source_addr_ton}, src_npi => $p->{source_addr_npi},
		     dst_ton => $p->{dest_addr_ton}, dst_npi => $p->{dest_addr_npi},
		     stat => $stat, text => $text, system_id => $c->{system_id},
		     submit_date => strftime('%y%m%d%H%M', gmtime()), tries => 0 };
}

sub on_bind {
	my ($c, $p, $mode) = @_;
	my $st = 0;
	$st = 0x05 if $c->{bound};
	$st = 0x0E if $opt{'system-id'} ne '' && ($p->{system_id} ne $opt{'system-id'}
						   || $p->{password} ne $opt{password});
	my $resp = { 1 => 'bind_receiver_resp', 2 => 'bind_transmitter_resp',
		     9 => 'bind_transceiver_resp' }->{$p->{cmd}};
	$c->{sock}->$resp(seq => $p->{seq}, status => $st, system_id => 'netsmpp');
	logev('ev=bind system_id=%s mode=%s version=0x%02x status=0x%02x peer=%s', $p->{system_id},
	      $mode, $p->{interface_version} // 0, $st, $c->{peer});
	return if $st;
	$c->{bound} = $mode;
	$c->{system_id} = $p->{system_id};
}

sub handle_pdu {
	my ($c, $p) = @_;
	my $cmd = $p->{cmd};
	my $name = $p->explain_cmd();
	if ($cmd == Net::SMPP::CMD_bind_transceiver) {
		on_bind($c, $p, 'trx');
	} elsif ($cmd == Net::SMPP::CMD_bind_transmitter) {
		on_bind($c, $p, 'tx');
	} elsif ($cmd == Net::SMPP::CMD_bind_receiver) {
		on_bind($c, $p, 'rx');
	} elsif ($cmd == Net::SMPP::CMD_submit_sm) {
		if (!$c->{bound} || $c->{bound} eq 'rx') {
			$c->{sock}->submit_sm_resp(seq => $p->{seq}, status => 0x04, message_id => '');
			logev('ev=submit_sm seq=%d status=0x04 why=not_bound_tx', $p->{seq});
			return;
		}
		on_submit($c, $p);
	} elsif ($cmd == Net::SMPP::CMD_deliver_sm_resp) {
		my $r = delete $c->{receipts_out}{$p->{seq}};
		logev('ev=deliver_sm_resp seq=%d status=0x%02x id=%s', $p->{seq}, $p->{status},
		      $r ? $r->{id} : '-');
		if ($r && $p->{status} != 0) {
			$r->{at} = time() + 0.5;   # refused: offer it again later
			push @due, $r;
		}
	} elsif ($cmd == Net::SMPP::CMD_enquire_link) {
		$c->{sock}->enquire_link_resp(seq => $p->{seq});
		logev('ev=enquire_link seq=%d', $p->{seq});
	} elsif ($cmd == Net::SMPP::CMD_enquire_link_resp) {
		logev('ev=enquire_link_resp seq=%d status=0x%02x', $p->{seq}, $p->{status});
	} elsif ($cmd == Net::SMPP::CMD_unbind) {
		$c->{sock}->unbind_resp(seq => $p->{seq});
		logev('ev=unbind seq=%d system_id=%s', $p->{seq}, $c->{system_id} // '-');
		close_conn($c, 'unbind');
	} elsif ($cmd == Net::SMPP::CMD_generic_nack) {
		logev('ev=generic_nack seq=%d status=0x%02x', $p->{seq}, $p->{status});
	} elsif ($cmd & 0x80000000) {
		logev('ev=unexpected_resp cmd=%s seq=%d', $name, $p->{seq});
	} else {
		$c->{sock}->generic_nack(seq => $p->{seq}, status => 0x03);
		logev('ev=unsupported cmd=0x%08x name=%s seq=%d', $cmd, $name, $p->{seq});
	}
}

sub on_readable {
	my ($c) = @_;
	my $n = sysread($c->{sock}, $c->{buf}, 65536, length($c->{buf}));
	if (!defined $n) {
		return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
		close_conn($c, "read_error:$!");
		return;
	}
	if ($n == 0) {
		close_conn($c, 'eof');
		return;
	}
	my $frames = 0;
	while (length($c->{buf}) >= 16) {
		my ($len, $cmd, $status, $seq) = unpack('NNNN', $c->{buf});
		if ($len < 16 || $len > $MAX_PDU) {
			logev('ev=bad_pdu why=command_length:%d cmd=0x%08x seq=%d', $len, $cmd, $seq);
			$c->{sock}->generic_nack(seq => $seq, status => 0x02);
			close_conn($c, 'bad_length');
			return;
		}
		last if length($c->{buf}) < $len;
		my $frame = substr($c->{buf}, 0, $len, '');
		$frames++;
		my ($p, $err) = decode_frame($c, $frame);
		if ($err) {
			logev('ev=bad_pdu why=%s cmd=0x%08x seq=%d hex=%s', $err, $cmd, $seq, hexs($frame));
			$c->{sock}->generic_nack(seq => $seq, status => $err eq 'unknown_command' ? 0x03 : 0x02)
				if !($cmd & 0x80000000);
			next;
		}
		handle_pdu($c, $p);
		last if !exists $conns{$c->{fd}};
	}
	if ($frames > $max_frames) {
		$max_frames = $frames;
		logev('ev=reads max_pdus_per_read=%d', $max_frames);
	}
}

sub receiver_for {
	my ($system_id) = @_;
	for my $c (values %conns) {
		return $c if $c->{bound} && $c->{bound} ne 'tx' && $c->{system_id} eq $system_id;
	}
	return undef;
}

sub send_due_receipts {
	my $now = time();
	my @later;
	for my $r (sort { $a->{at} <=> $b->{at} } @due) {
		if ($r->{at} > $now) {
			push @later, $r;
			next;
		}
		my $c = receiver_for($r->{system_id});
		if (!$c) {
			$r->{at} = $now + 0.2;
			push @later, $r;
			logev('ev=receipt_parked id=%s', $r->{id}) if !$parked{$r->{id}}++;
			next;
		}
		my $err = $r->{stat} eq 'DELIVRD' ? '000' : '001';
		my $done = strftime('%y%m%d%H%M', gmtime());
		my $text = "id:$r->{id} sub:001 dlvrd:" . ($r->{stat} eq 'DELIVRD' ? '001' : '000')
			. " submit date:$r->{submit_date} done date:$done stat:$r->{stat} err:$err"
			. " text:$r->{text}";
		my $state = $r->{stat} eq 'DELIVRD' ? 2 : 5;
		# a receipt goes from the handset back to the sender: addresses swap
		my $seq = $c->{sock}->deliver_sm(async => 1,
			source_addr_ton => $r->{dst_ton}, source_addr_npi => $r->{dst_npi},
			source_addr => $r->{dst},
			dest_addr_ton => $r->{src_ton}, dest_addr_npi => $r->{src_npi},
			destination_addr => $r->{src},
			esm_class => 0x04, data_coding => 0, registered_delivery => 0,
			short_message => $text,
			receipted_message_id => "$r->{id}\0", message_state => chr($state));
		$r->{tries}++;
		$c->{receipts_out}{$seq} = $r;
		logev('ev=receipt id=%s stat=%s dst=%s seq=%d try=%d', $r->{id}, $r->{stat}, $r->{dst},
		      $seq, $r->{tries});
	}
	@due = @later;
}

sub send_enquire_links {
	return if !$opt{'enquire-every'};
	my $now = time();
	for my $c (values %conns) {
		next if !$c->{bound} || $now < $c->{next_enquire};
		$c->{next_enquire} = $now + $opt{'enquire-every'};
		my $seq = $c->{sock}->enquire_link(async => 1);
		logev('ev=enquire_link_sent seq=%d', $seq);
	}
}

while (!$stop && time() < $deadline) {
	my $wait = 0.05;
	for my $fh ($sel->can_read($wait)) {
		if ($fh == $listen) {
			my $s = $listen->accept() or next;
			# blocking: Net::SMPP writes each PDU with one syswrite, which must
			# not be cut short; select says when a read will not block, and a
			# peer that stops reading stalls a write for SO_SNDTIMEO at most
			$s->blocking(1);
			$s->autoflush(1);
			setsockopt($s, SOL_SOCKET, SO_SNDTIMEO, pack('l!l!', 5, 0));
			my $fd = fileno($s);
			$conns{$fd} = { sock => $s, fd => $fd, buf => '', bound => '', system_id => undef,
					peer => $s->peerhost() . ':' . $s->peerport(), receipts_out => {},
					next_enquire => time() + ($opt{'enquire-every'} || 0) };
			$sel->add($s);
			logev('ev=accept peer=%s', $conns{$fd}{peer});
			next;
		}
		my $c = $conns{fileno($fh)} or next;
		on_readable($c);
	}
	send_due_receipts();
	send_enquire_links();
}
logev('ev=exit why=%s submits=%d pending_receipts=%d', $stop ? 'signal' : 'max_seconds',
      $next_id - 1, scalar(@due));
close_conn($_, 'exit') for values %conns;
exit 0;
